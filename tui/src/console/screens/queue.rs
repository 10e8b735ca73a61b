//! Queue: the fair execution queue as an operator watches it, refreshed
//! every second: per-user counts, jobs per second, the next jobs in fair
//! order with their places, the workers holding jobs with their heartbeats'
//! ages, and the `processing` jobs whose worker stopped heartbeating, which
//! `x` returns to the queue (or fails, after too many resets). Ages and
//! stalls are as of the snapshot's `read_at`, so one refresh is one instant.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};
use recents_service::JobId;
use recents_service::admin::UserQueueStats;
use recents_service::queue::{InLine, Job, ResetReport, WorkerSeen};

use super::super::format::{age, count, rate, short_time, time};
use super::super::worker::{MAX_RESETS, QueueSnapshot, Request, STALLED_AFTER};

/// The Queue screen's state.
#[derive(Debug)]
pub struct QueueState {
    /// How old a heartbeat makes a `processing` job stalled.
    pub stalled_after: Duration,
    /// The queue at the last refresh.
    pub snapshot: Option<QueueSnapshot>,
    /// Why the last refresh failed, until one succeeds.
    pub error: Option<String>,
    /// Whether a refresh is under way (the next tick waits for it).
    pub loading: bool,
    /// Whether a reset of stalled jobs is under way.
    pub resetting: bool,
    /// What the last reset did.
    pub last_reset: Option<Result<ResetReport, String>>,
    /// The first user row on display (the table scrolls with ↑↓).
    pub users_offset: usize,
    /// How many user rows the last drawing had room for.
    users_visible: usize,
}

impl Default for QueueState {
    fn default() -> Self {
        Self {
            stalled_after: STALLED_AFTER,
            snapshot: None,
            error: None,
            loading: false,
            resetting: false,
            last_reset: None,
            users_offset: 0,
            users_visible: 1,
        }
    }
}

impl QueueState {
    /// The request for a refresh.
    pub fn request(&self) -> Request {
        Request::Queue {
            stalled_after: self.stalled_after,
        }
    }

    /// The request for a reset of the stalled jobs.
    pub fn reset_request(&self) -> Request {
        Request::ResetStalled {
            stalled_after: self.stalled_after,
        }
    }

    /// Scrolls the users' table by `rows` (negative: up), within the users
    /// of the last refresh.
    pub fn scroll_users(&mut self, rows: isize) {
        let users = self.snapshot.as_ref().map_or(0, |s| s.users.len());
        self.users_offset = self
            .users_offset
            .saturating_add_signed(rows)
            .min(users.saturating_sub(self.users_visible));
    }

    /// A refresh arrived.
    pub fn show(&mut self, result: Result<QueueSnapshot, String>) {
        self.loading = false;
        match result {
            Ok(snapshot) => {
                self.snapshot = Some(snapshot);
                self.error = None;
            }
            Err(message) => self.error = Some(message),
        }
    }
}

/// The keys of this screen, for the footer.
pub fn keys() -> &'static [(&'static str, &'static str)] {
    &[
        ("?", "help"),
        ("q", "quit"),
        ("↑↓", "users"),
        ("x", "reset stalled"),
        ("r", "refresh"),
    ]
}

/// Rows a table block needs for `rows` rows: borders, header, at least one line.
fn needed(rows: usize) -> u16 {
    rows.max(1).min(u16::MAX as usize - 3) as u16 + 3
}

/// Draws the screen into `area`.
pub fn render(state: &mut QueueState, frame: &mut Frame, area: Rect) {
    let notice = notice_line(state);
    let [head, notice_area, body] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::from(notice.is_some())),
        Constraint::Min(0),
    ])
    .areas(area);
    if let Some(notice) = notice {
        frame.render_widget(Paragraph::new(notice), notice_area);
    }
    let Some(snapshot) = &state.snapshot else {
        let text = match (&state.error, state.loading) {
            (Some(error), _) => format!("The queue could not be read: {error}"),
            (None, true) => "Loading the queue…".to_owned(),
            (None, false) => "Waiting for the database…".to_owned(),
        };
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), head);
        return;
    };
    let wide = area.width >= 72;
    frame.render_widget(
        Paragraph::new(head_line(state, snapshot, wide, head.width)),
        head,
    );

    // Next in line takes what the counts and the stalled jobs leave; on a
    // short terminal the stalled jobs go first (the head line counts them).
    let users_rows = needed(snapshot.users.len()).min(10);
    let stalled_rows = needed(snapshot.stalled.len()).min(8);
    let height = body.height;
    let (users_rows, stalled_rows) = if users_rows + 4 + stalled_rows <= height {
        (users_rows, stalled_rows)
    } else if users_rows.min(6) + 4 + stalled_rows.min(5) <= height {
        (users_rows.min(6), stalled_rows.min(5))
    } else {
        (users_rows.min(height / 2), 0)
    };
    let [users_area, next_area, stalled_area] = Layout::vertical([
        Constraint::Length(users_rows),
        Constraint::Min(0),
        Constraint::Length(stalled_rows),
    ])
    .areas(body);
    // Borders and header take three lines of the users' table.
    state.users_visible = usize::from(users_rows.saturating_sub(3)).max(1);
    render_users(&snapshot.users, state.users_offset, wide, frame, users_area);
    // Workers sit beside the fair order when the line is wide, under it on
    // a narrow terminal tall enough; the fair order keeps four rows.
    let workers_rows = needed(snapshot.workers.len()).min(6);
    let (next_area, workers_area) = if wide {
        let width = next_area.width.saturating_sub(56).clamp(24, 60);
        let [next, workers] =
            Layout::horizontal([Constraint::Min(0), Constraint::Length(width)]).areas(next_area);
        (next, Some(workers))
    } else if next_area.height >= 4 + workers_rows {
        let [next, workers] =
            Layout::vertical([Constraint::Min(4), Constraint::Length(workers_rows)])
                .areas(next_area);
        (next, Some(workers))
    } else {
        (next_area, None)
    };
    render_next(&snapshot.next, wide, frame, next_area);
    if let Some(area) = workers_area {
        render_workers(state, snapshot, frame, area);
    }
    if stalled_rows > 0 {
        render_stalled(state, &snapshot.stalled, wide, frame, stalled_area);
    }
}

fn head_line(
    state: &QueueState,
    snapshot: &QueueSnapshot,
    wide: bool,
    width: u16,
) -> Line<'static> {
    let sum = |f: fn(&UserQueueStats) -> u64| snapshot.users.iter().map(f).sum::<u64>();
    let stalled = snapshot.stalled.len();
    let per_second = rate(snapshot.throughput.per_second());
    let stalled_span = if stalled > 0 {
        Span::from(format!("{stalled} stalled")).red().bold()
    } else {
        Span::from("0 stalled")
    };
    if !wide {
        // What needs the operator first, while the line is cut.
        return Line::from(vec![
            Span::from(format!("{} queued · ", count(sum(|u| u.queued)))),
            stalled_span,
            Span::from(format!(
                " · {per_second}/s · {} proc · {} err · {} fail",
                count(sum(|u| u.processing)),
                count(sum(|u| u.errored)),
                count(sum(|u| u.failed))
            )),
        ]);
    }
    let mut spans = vec![
        Span::from(format!("{} queued", count(sum(|u| u.queued)))).bold(),
        Span::from(format!(
            " · {} errored · {} processing · ",
            count(sum(|u| u.errored)),
            count(sum(|u| u.processing))
        )),
        stalled_span,
        Span::from(format!(" · {} failed · ", count(sum(|u| u.failed)))),
        Span::from(format!("{per_second} jobs/s")).bold(),
    ];
    if let Some(error) = &state.error {
        // The last good refresh stays on screen; saying that it is stale
        // matters more than the counts the tables show anyway.
        spans.push(Span::from(format!(" · refresh failed: {error}")).yellow());
    } else {
        // The tables count these too: shown only where the line has room.
        let tail = Span::from(format!(
            " · {} users · {} workers",
            snapshot.users.len(),
            snapshot.workers.len()
        ));
        if Line::from(spans.clone()).width() + tail.width() <= usize::from(width) {
            spans.push(tail);
        }
    }
    Line::from(spans)
}

fn notice_line(state: &QueueState) -> Option<Line<'static>> {
    if state.resetting {
        return Some(Line::from("resetting stalled jobs…"));
    }
    Some(match state.last_reset.as_ref()? {
        Ok(report)
            if report.requeued.is_empty()
                && report.failed.is_empty()
                && report.canceled.is_empty() =>
        {
            Line::from(format!(
                "reset: no job was stalled for {} s",
                state.stalled_after.as_secs()
            ))
            .green()
        }
        Ok(report) => {
            let canceled = match report.canceled.len() {
                0 => String::new(),
                n => format!(
                    " · {n} canceled while running{}",
                    job_list(&report.canceled)
                ),
            };
            Line::from(format!(
                "reset: {} requeued{} · {} failed after {MAX_RESETS} resets{}{canceled}",
                report.requeued.len(),
                job_list(&report.requeued),
                report.failed.len(),
                job_list(&report.failed),
            ))
            .yellow()
        }
        Err(message) => Line::from(format!("reset failed: {message}")).red(),
    })
}

/// ` (jobs 4, 7, 9)`, the first few only; empty for none.
fn job_list(jobs: &[JobId]) -> String {
    const SHOWN: usize = 5;
    if jobs.is_empty() {
        return String::new();
    }
    let mut ids: Vec<String> = jobs.iter().take(SHOWN).map(ToString::to_string).collect();
    if jobs.len() > SHOWN {
        ids.push("…".to_owned());
    }
    let noun = if jobs.len() == 1 { "job" } else { "jobs" };
    format!(" ({noun} {})", ids.join(", "))
}

fn right(text: String) -> Cell<'static> {
    Cell::from(Line::from(text).right_aligned())
}

fn header(titles: &[&'static str], right_aligned: &[usize]) -> Row<'static> {
    Row::new(titles.iter().enumerate().map(|(i, title)| {
        if right_aligned.contains(&i) {
            Cell::from(Line::from(*title).right_aligned())
        } else {
            Cell::from(*title)
        }
    }))
    .style(Style::new().add_modifier(Modifier::BOLD))
}

fn empty(text: &'static str, block: Block<'static>, frame: &mut Frame, area: Rect) {
    frame.render_widget(Paragraph::new(text).dim().block(block), area);
}

fn render_users(
    users: &[UserQueueStats],
    offset: usize,
    wide: bool,
    frame: &mut Frame,
    area: Rect,
) {
    // Borders and header take three lines; the rest shows users from the
    // offset on, kept so that the last page is full.
    let visible = usize::from(area.height.saturating_sub(3)).max(1);
    let offset = offset.min(users.len().saturating_sub(visible));
    let title = if users.len() > visible {
        format!(
            " Users {}-{} of {} · ↑↓ ",
            offset + 1,
            (offset + visible).min(users.len()),
            users.len()
        )
    } else {
        " Users ".to_owned()
    };
    let block = Block::bordered().title(title);
    if users.is_empty() {
        return empty("No jobs queued, running or failed.", block, frame, area);
    }
    let users = &users[offset..];
    let dequeued = |u: &UserQueueStats| match (u.latest_dequeue, wide) {
        (Some(at), true) => time(at),
        (Some(at), false) => short_time(at),
        (None, _) => "never".to_owned(),
    };
    let rows = users.iter().map(|u| {
        Row::new(vec![
            Cell::from(u.user_id.to_string()),
            right(count(u.queued)),
            right(count(u.errored)),
            right(count(u.processing)),
            right(count(u.failed)),
            Cell::from(dequeued(u)),
        ])
    });
    let (titles, widths) = if wide {
        (
            [
                "User",
                "Queued",
                "Errored",
                "Processing",
                "Failed",
                "Latest dequeue (UTC)",
            ],
            [
                Constraint::Length(10),
                Constraint::Length(8),
                Constraint::Length(8),
                Constraint::Length(10),
                Constraint::Length(8),
                Constraint::Min(20),
            ],
        )
    } else {
        (
            ["User", "Queued", "Err", "Proc", "Fail", "Dequeued"],
            [
                Constraint::Min(4),
                Constraint::Length(6),
                Constraint::Length(4),
                Constraint::Length(4),
                Constraint::Length(4),
                Constraint::Length(11),
            ],
        )
    };
    frame.render_widget(
        Table::new(rows, widths)
            .header(header(&titles, &[1, 2, 3, 4]))
            .block(block),
        area,
    );
}

fn render_next(next: &[InLine], wide: bool, frame: &mut Frame, area: Rect) {
    let block = Block::bordered().title(" Next in line · fair order ");
    if next.is_empty() {
        return empty("Nobody is waiting.", block, frame, area);
    }
    let rows = next.iter().map(|job| {
        Row::new(vec![
            right(job.place.place_in_global_queue.to_string()),
            right(job.place.place_in_user_queue.to_string()),
            right(job.job_id.to_string()),
            Cell::from(job.user_id.to_string()),
            Cell::from(if wide {
                time(job.created_at)
            } else {
                short_time(job.created_at)
            }),
        ])
    });
    let (titles, widths) = if wide {
        (
            ["Place", "In user's", "Job", "User", "Created (UTC)"],
            [
                Constraint::Length(5),
                Constraint::Length(9),
                Constraint::Length(8),
                Constraint::Length(8),
                Constraint::Min(19),
            ],
        )
    } else {
        (
            ["#", "User#", "Job", "User", "Created"],
            [
                Constraint::Length(3),
                Constraint::Length(5),
                Constraint::Length(6),
                Constraint::Min(4),
                Constraint::Length(11),
            ],
        )
    };
    frame.render_widget(
        Table::new(rows, widths)
            .header(header(&titles, &[0, 1, 2]))
            .block(block),
        area,
    );
}

fn render_workers(state: &QueueState, snapshot: &QueueSnapshot, frame: &mut Frame, area: Rect) {
    let workers = &snapshot.workers;
    let visible = usize::from(area.height.saturating_sub(3)).max(1);
    let shown = if workers.len() > visible {
        format!(" {visible} of {}", workers.len())
    } else {
        String::new()
    };
    // The instant the ages are counted from, where the title has room.
    let title = format!(
        " Workers{shown} · at {} ",
        snapshot.read_at.format("%H:%M:%S")
    );
    let title = if title.chars().count() + 2 <= usize::from(area.width) {
        title
    } else {
        format!(" Workers{shown} ")
    };
    let block = Block::bordered().title(title);
    if workers.is_empty() {
        return empty("No worker holds a job.", block, frame, area);
    }
    // How the heartbeat is told, by the room there is: with its time where
    // names keep fourteen columns (a cut name is worse than a time the age
    // already gives), as "19 min ago", or as "19 min".
    #[derive(Clone, Copy, PartialEq)]
    enum Beat {
        TimeAndAge,
        Ago,
        Age,
    }
    let beat_as = match area.width {
        w if w >= 48 => Beat::TimeAndAge,
        w if w >= 32 => Beat::Ago,
        _ => Beat::Age,
    };
    let stall = chrono::Duration::from_std(state.stalled_after).unwrap_or(chrono::Duration::MAX);
    let rows = workers.iter().map(|w: &WorkerSeen| {
        let beat = w.last_heartbeat.map_or_else(
            || Span::from("never").red(),
            |at| {
                let ago = age(at, snapshot.read_at);
                let text = if beat_as == Beat::Ago {
                    format!("{ago} ago")
                } else {
                    ago
                };
                if snapshot.read_at - at > stall {
                    Span::from(text).red().bold()
                } else {
                    Span::from(text)
                }
            },
        );
        let mut cells = vec![Cell::from(w.name.clone()), right(count(w.in_flight))];
        if beat_as == Beat::TimeAndAge {
            cells.push(Cell::from(w.last_heartbeat.map(time).unwrap_or_default()));
        }
        cells.push(Cell::from(Line::from(beat).right_aligned()));
        Row::new(cells)
    });
    let table = match beat_as {
        Beat::TimeAndAge => Table::new(
            rows,
            [
                Constraint::Min(14),
                Constraint::Length(4),
                Constraint::Length(19),
                Constraint::Length(6),
            ],
        )
        .header(header(
            &["Worker", "Jobs", "Heartbeat (UTC)", "Age"],
            &[1, 3],
        )),
        Beat::Ago => Table::new(
            rows,
            [
                Constraint::Min(6),
                Constraint::Length(4),
                Constraint::Length(10),
            ],
        )
        .header(header(&["Worker", "Jobs", "Heartbeat"], &[1, 2])),
        Beat::Age => Table::new(
            rows,
            [
                Constraint::Min(6),
                Constraint::Length(4),
                Constraint::Length(6),
            ],
        )
        .header(header(&["Worker", "Jobs", "Beat"], &[1, 2])),
    };
    frame.render_widget(table.block(block), area);
}

fn render_stalled(state: &QueueState, stalled: &[Job], wide: bool, frame: &mut Frame, area: Rect) {
    let block = Block::bordered().title(format!(
        " Stalled · no heartbeat for {} s · x resets ",
        state.stalled_after.as_secs()
    ));
    if stalled.is_empty() {
        return empty("No stalled jobs.", block, frame, area);
    }
    let at = |at: Option<chrono::DateTime<chrono::Utc>>| match (at, wide) {
        (Some(at), true) => time(at),
        (Some(at), false) => short_time(at),
        (None, _) => "never".to_owned(),
    };
    let rows = stalled.iter().map(|job| {
        let mut cells = vec![
            right(job.id.to_string()),
            Cell::from(job.user_id.to_string()),
        ];
        if wide {
            cells.push(Cell::from(job.worker_hostname.clone().unwrap_or_default()));
            cells.push(Cell::from(at(job.started_at)));
        }
        cells.push(Cell::from(at(job.last_heartbeat_at)));
        cells.push(right(format!("{}/{MAX_RESETS}", job.num_resets)));
        Row::new(cells)
    });
    let table = if wide {
        Table::new(
            rows,
            [
                Constraint::Length(8),
                Constraint::Length(8),
                Constraint::Min(8),
                Constraint::Length(19),
                Constraint::Length(19),
                Constraint::Length(6),
            ],
        )
        .header(header(
            &[
                "Job",
                "User",
                "Worker",
                "Started (UTC)",
                "Heartbeat (UTC)",
                "Resets",
            ],
            &[0, 5],
        ))
    } else {
        Table::new(
            rows,
            [
                Constraint::Length(6),
                Constraint::Min(4),
                Constraint::Length(11),
                Constraint::Length(6),
            ],
        )
        .header(header(&["Job", "User", "Heartbeat", "Resets"], &[0, 3]))
    };
    frame.render_widget(table.block(block), area);
}
