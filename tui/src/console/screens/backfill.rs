//! Backfill: builds the recent-workflows summary from history for every
//! workspace or the one open, with a gauge, rows/s, ETA and a throughput
//! sparkline; Esc cancels and leaves a checkpoint the next run resumes from.
//! Verify and repair run from here too, with the drift they found.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Gauge, Paragraph, Row, Sparkline, Table, Wrap};
use recents_service::{BackfillReport, Drift, Progress, WorkspaceId};

use crate::commands::verify::Checked;

use super::super::format::{count, duration, precise_time};

/// What a backfill or a verify covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// Every workspace.
    All,
    /// One workspace.
    Workspace(WorkspaceId),
}

/// Throughput samples the sparkline keeps.
const SAMPLES: usize = 120;

/// The Backfill screen's state.
#[derive(Debug)]
pub struct BackfillState {
    /// What `b` and `v` cover.
    pub target: Coverage,
    /// Whether a backfill is running.
    pub running: bool,
    /// Whether a cancel was asked for and not yet answered.
    pub cancelling: bool,
    /// The latest progress of the running (or last) backfill.
    pub progress: Option<Progress>,
    /// Rows per second, one sample per progress event, newest last.
    pub throughput: Vec<u64>,
    /// How the last backfill ended.
    pub last: Option<Result<BackfillReport, String>>,
    /// Whether a verify or repair is running.
    pub checking: bool,
    /// The last verify's report, and the rows a repair fixed.
    pub drift: Option<Result<Checked, String>>,
}

impl Default for BackfillState {
    fn default() -> Self {
        Self {
            target: Coverage::All,
            running: false,
            cancelling: false,
            progress: None,
            throughput: Vec::new(),
            last: None,
            checking: false,
            drift: None,
        }
    }
}

impl BackfillState {
    /// A backfill starts.
    pub fn start(&mut self) {
        self.running = true;
        self.cancelling = false;
        self.progress = None;
        self.throughput.clear();
        self.last = None;
    }

    /// A progress event arrived.
    pub fn advance(&mut self, progress: Progress) {
        if self.throughput.len() == SAMPLES {
            self.throughput.remove(0);
        }
        self.throughput
            .push(progress.rows_per_second.round() as u64);
        self.progress = Some(progress);
    }

    /// Whether a backfill, a verify or a repair is under way.
    pub fn busy(&self) -> bool {
        self.running || self.checking
    }

    /// Points `b`, `v` and `x` at `target`; what was shown of the other
    /// target (its gauge, throughput, verdict) goes with it.
    pub fn retarget(&mut self, target: Coverage) {
        if target != self.target {
            self.target = target;
            self.progress = None;
            self.throughput.clear();
            self.last = None;
            self.drift = None;
        }
    }

    /// The backfill ended: done, cancelled or failed.
    pub fn finish(&mut self, result: Result<BackfillReport, String>) {
        self.running = false;
        self.cancelling = false;
        self.last = Some(result);
    }
}

/// The footer's keys.
pub fn keys(state: &BackfillState) -> &'static [(&'static str, &'static str)] {
    if state.running {
        &[
            ("?", "help"),
            ("q", "quit"),
            ("4", "queue"),
            ("Esc", "cancel"),
        ]
    } else {
        &[
            ("?", "help"),
            ("q", "quit"),
            ("4", "queue"),
            ("b", "backfill"),
            ("v", "verify"),
            ("x", "repair"),
            ("t", "target"),
        ]
    }
}

/// Draws the screen into `area`; `target_name` names the open workspace.
pub fn render(state: &BackfillState, target_name: Option<&str>, frame: &mut Frame, area: Rect) {
    let [head, gauge, rate, spark, drift] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Length(4),
        Constraint::Min(0),
    ])
    .areas(area);
    let target = match (state.target, target_name) {
        (Coverage::All, _) => "every workspace".to_owned(),
        (Coverage::Workspace(id), Some(name)) => format!("workspace {name} (#{id})"),
        (Coverage::Workspace(id), None) => format!("workspace #{id}"),
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec!["Target: ".into(), target.bold()])),
        head,
    );

    let (ratio, label) = match &state.progress {
        Some(p) if p.rows_total > 0 => {
            let ratio = (p.rows_scanned as f64 / p.rows_total as f64).clamp(0.0, 1.0);
            (
                ratio,
                format!(
                    "{:.1}% · {} of {} history rows",
                    ratio * 100.0,
                    count(p.rows_scanned),
                    count(p.rows_total)
                ),
            )
        }
        Some(_) => (1.0, "nothing to merge".to_owned()),
        None if state.running => (0.0, "starting…".to_owned()),
        None => (0.0, "not started · b starts".to_owned()),
    };
    frame.render_widget(
        Gauge::default()
            .block(Block::bordered().title(" Backfill "))
            .gauge_style(Style::new().fg(Color::Green))
            .ratio(ratio)
            .label(label),
        gauge,
    );

    frame.render_widget(Paragraph::new(rate_line(state)), rate);
    frame.render_widget(
        Sparkline::default()
            .block(Block::bordered().title(" rows/s "))
            .data(&state.throughput)
            .style(Style::new().fg(Color::Cyan)),
        spark,
    );
    render_drift(state, frame, drift);
}

fn rate_line(state: &BackfillState) -> Line<'static> {
    if state.cancelling {
        return Line::from("cancelling after this batch…").yellow();
    }
    if state.running {
        return match &state.progress {
            Some(p) => Line::from(format!(
                "{} rows/s · ETA {}",
                count(p.rows_per_second.round() as u64),
                p.eta.map(duration).unwrap_or_else(|| "–".into())
            )),
            None => Line::from("starting…"),
        };
    }
    match &state.last {
        Some(Ok(report)) if report.finished => Line::from(format!(
            "done: {} history rows in {} batch{}, {}{}",
            count(report.rows_scanned),
            report.batches,
            if report.batches == 1 { "" } else { "es" },
            duration(report.elapsed),
            if report.resumed {
                ", resumed from its checkpoint"
            } else {
                ""
            }
        ))
        .green(),
        Some(Ok(report)) => Line::from(format!(
            "cancelled after {} rows: the checkpoint is kept, b resumes",
            count(report.rows_scanned)
        ))
        .yellow(),
        Some(Err(message)) => Line::from(format!("failed: {message}")).red(),
        None => Line::from(""),
    }
}

fn render_drift(state: &BackfillState, frame: &mut Frame, area: Rect) {
    let block = Block::bordered().title(" Verify · v checks, x repairs ");
    let report = match (&state.drift, state.checking) {
        (_, true) => {
            frame.render_widget(
                Paragraph::new("checking every summary row…").block(block),
                area,
            );
            return;
        }
        (None, false) => {
            frame.render_widget(Paragraph::new("not verified yet").dim().block(block), area);
            return;
        }
        (Some(Err(message)), false) => {
            frame.render_widget(
                Paragraph::new(message.clone())
                    .red()
                    .wrap(Wrap { trim: true })
                    .block(block),
                area,
            );
            return;
        }
        (Some(Ok(report)), false) => report,
    };
    let Checked {
        summary: found,
        repaired,
        last_dequeues,
        ..
    } = report;
    let verdict = match (found.is_exact(), repaired) {
        (true, _) => Line::from(format!(
            "exact: {} summary rows match {} history rows",
            count(found.summary_rows),
            count(found.history_rows)
        ))
        .green(),
        (false, Some(fixed)) => Line::from(format!(
            "{} drifted rows found, {} repaired",
            count(found.drifted()),
            count(*fixed)
        ))
        .yellow(),
        (false, None) => Line::from(format!(
            "drift: {} missing, {} stale, {} too high, {} extra · x repairs",
            found.missing, found.stale, found.too_high, found.extra
        ))
        .red(),
    };
    // The latest dequeues, checked with every whole-database verify.
    let dequeues = last_dequeues
        .as_ref()
        .map(|l| match (l.is_exact(), repaired) {
            (true, _) => Line::from(format!(
                "latest dequeues exact: {} rows match {} jobs",
                count(l.rows),
                count(l.jobs)
            ))
            .green(),
            (false, Some(_)) => Line::from(format!(
                "latest dequeues: {} drifted, {} repaired",
                count(l.drifted()),
                count(l.repaired)
            ))
            .yellow(),
            (false, None) => Line::from(format!(
                "latest dequeues: {} missing, {} stale, {} too high, {} extra · x repairs",
                l.missing, l.stale, l.too_high, l.extra
            ))
            .red(),
        });
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [verdict_area, dequeues_area, samples_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::from(dequeues.is_some())),
        Constraint::Min(0),
    ])
    .areas(inner);
    frame.render_widget(Paragraph::new(verdict), verdict_area);
    if let Some(dequeues) = dequeues {
        frame.render_widget(Paragraph::new(dequeues), dequeues_area);
    }
    let rows = found.samples.iter().map(sample_row);
    frame.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(8),
                Constraint::Length(9),
                Constraint::Length(12),
                Constraint::Length(9),
                Constraint::Min(10),
                Constraint::Min(10),
            ],
        )
        .header(
            Row::new([
                "Kind",
                "Workspace",
                "User",
                "Workflow",
                "Summary",
                "History",
            ])
            .bold(),
        ),
        samples_area,
    );
}

fn sample_row(d: &Drift) -> Row<'static> {
    let show = |v: &Option<(recents_service::SavedRunId, chrono::DateTime<chrono::Utc>)>| match v {
        Some((run, at)) => format!("run {} {}", run.0, precise_time(*at)),
        None => "–".to_owned(),
    };
    Row::new([
        format!("{:?}", d.kind),
        d.workspace_id.0.to_string(),
        if d.uid.is_empty() {
            "(all)".to_owned()
        } else {
            d.uid.clone()
        },
        d.published_run_id.0.to_string(),
        show(&d.summary),
        show(&d.history),
    ])
}
