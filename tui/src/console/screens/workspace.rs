//! Workspace: one workspace's recent workflows, in workspace scope or per
//! member, from the summary; on `h`, the same answer from the history query
//! beside it, both timed, and whether they agree.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph, Row, Table, Wrap};
use recents_service::admin::WorkspaceOverview;
use recents_service::{RecentWorkflow, Scope, WorkspaceId};

use super::super::format::{count, duration, short_time, time};
use super::super::worker::{Comparison, MEMBER_LIMIT, RECENT_LIMIT};

/// The Workspace screen's state.
#[derive(Debug)]
pub struct WorkspaceState {
    /// The workspace on display.
    pub id: WorkspaceId,
    /// Its overview, once loaded.
    pub overview: Option<WorkspaceOverview>,
    /// Its members (the first [`MEMBER_LIMIT`]).
    pub members: Vec<String>,
    /// The scope picked: 0 is the whole workspace, `n` is `members[n - 1]`.
    pub selected: usize,
    /// The scope list's state.
    pub scopes: ListState,
    /// The summary's answer for the scope picked.
    pub recent: Option<Result<Vec<RecentWorkflow>, String>>,
    /// Both answers for the scope picked, after `h`.
    pub comparison: Option<Result<Comparison, String>>,
    /// Whether a comparison is running.
    pub comparing: bool,
    /// Whether the overview is being fetched.
    pub loading: bool,
    /// Why the workspace could not be read.
    pub error: Option<String>,
}

impl WorkspaceState {
    /// A screen for `id`, nothing loaded yet.
    pub fn new(id: WorkspaceId) -> Self {
        Self {
            id,
            overview: None,
            members: Vec::new(),
            selected: 0,
            scopes: ListState::default().with_selected(Some(0)),
            recent: None,
            comparison: None,
            comparing: false,
            loading: false,
            error: None,
        }
    }

    /// Shows the overview and members that arrived.
    pub fn show(&mut self, overview: WorkspaceOverview, members: Vec<String>) {
        self.overview = Some(overview);
        self.members = members;
        self.error = None;
        if self.selected > self.members.len() {
            self.select(0);
        }
    }

    /// Whether the workspace can be read (loaded and not deleted).
    pub fn can_read(&self) -> bool {
        self.overview
            .as_ref()
            .is_some_and(|o| o.deleted_at.is_none())
    }

    /// Picks scope `index`; false when there is no such scope.
    pub fn select(&mut self, index: usize) -> bool {
        if index > self.members.len() || !self.can_read() {
            return false;
        }
        self.selected = index;
        self.scopes.select(Some(index));
        self.recent = None;
        self.comparison = None;
        self.comparing = false;
        true
    }

    /// The scope picked.
    pub fn scope(&self) -> Scope {
        match self.selected {
            0 => Scope::Workspace,
            n => Scope::Member(self.members[n - 1].clone()),
        }
    }

    fn scope_label(&self) -> String {
        match self.scope() {
            Scope::Workspace => "whole workspace".to_owned(),
            Scope::Member(uid) => format!("member {uid}"),
        }
    }
}

/// The keys of this screen, for the footer.
pub fn keys() -> &'static [(&'static str, &'static str)] {
    &[
        ("?", "help"),
        ("q", "quit"),
        ("4", "queue"),
        ("↑↓", "scope"),
        ("h", "vs history"),
        ("Esc", "back"),
        ("r", "reload"),
    ]
}

/// Draws the screen into `area`.
pub fn render(state: &mut WorkspaceState, frame: &mut Frame, area: Rect) {
    let [header, body] = Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(area);
    let Some(overview) = &state.overview else {
        let text = match &state.error {
            Some(error) => format!("Workspace {}: {error}", state.id),
            None => format!("Loading workspace {}…", state.id),
        };
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    };
    let kind = if overview.is_personal {
        "personal"
    } else {
        "team"
    };
    let last = overview
        .last_used_at
        .map(time)
        .unwrap_or_else(|| "never".into());
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(vec![
                Span::from(overview.name.clone()).bold(),
                Span::from(format!(" #{} · {kind}", overview.id)),
            ]),
            Line::from(format!(
                "{} history runs · {} summary rows · last use {last}",
                count(overview.history_runs),
                count(overview.summary_rows)
            )),
        ]),
        header,
    );
    if let Some(deleted) = overview.deleted_at {
        frame.render_widget(
            Paragraph::new(format!(
                "Deleted at {}: its recent workflows read as WorkspaceDeleted.",
                time(deleted)
            ))
            .wrap(Wrap { trim: true })
            .block(Block::bordered()),
            body,
        );
        return;
    }

    // A narrow terminal gives the answers the whole width; the scope picked
    // is in their titles, and ↑↓ still moves through the scopes.
    let narrow = area.width < 70;
    let scope_width = if narrow {
        0
    } else {
        (area.width / 3).clamp(12, 24)
    };
    let [scopes_area, recent_area] =
        Layout::horizontal([Constraint::Length(scope_width), Constraint::Min(0)]).areas(body);
    let columns = if narrow {
        Columns::Compact
    } else {
        Columns::Full
    };
    let mut items = vec![ListItem::new("whole workspace")];
    items.extend(state.members.iter().map(|m| ListItem::new(m.clone())));
    let members_title = if state.members.len() as u32 >= MEMBER_LIMIT {
        format!(" Scope ({}+ members) ", state.members.len())
    } else {
        format!(" Scope ({} members) ", state.members.len())
    };
    frame.render_stateful_widget(
        List::new(items)
            .block(Block::bordered().title(members_title))
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED))
            .highlight_symbol("› "),
        scopes_area,
        &mut state.scopes,
    );

    let scope = state.scope_label();
    if state.comparing || state.comparison.is_some() {
        render_comparison(state, &scope, narrow, frame, recent_area);
        return;
    }
    let block = Block::bordered().title(format!(" Recent workflows · {scope} "));
    match &state.recent {
        None => frame.render_widget(Paragraph::new("Loading…").block(block), recent_area),
        Some(Err(error)) => frame.render_widget(
            Paragraph::new(error.clone())
                .wrap(Wrap { trim: true })
                .block(block),
            recent_area,
        ),
        Some(Ok(workflows)) if workflows.is_empty() => frame.render_widget(
            Paragraph::new("No workflow used in this scope.").block(block),
            recent_area,
        ),
        Some(Ok(workflows)) => {
            let block = block.title_bottom(" h: compare with the history query ");
            frame.render_widget(workflow_table(workflows, block, columns), recent_area);
        }
    }
}

fn render_comparison(
    state: &WorkspaceState,
    scope: &str,
    narrow: bool,
    frame: &mut Frame,
    area: Rect,
) {
    let [verdict_area, tables] =
        Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(area);
    let comparison = match &state.comparison {
        None => {
            frame.render_widget(
                Paragraph::new(format!(
                    "Comparing ({scope}): the history query reads every run of the scope…"
                ))
                .wrap(Wrap { trim: true }),
                verdict_area,
            );
            return;
        }
        Some(Err(error)) => {
            frame.render_widget(
                Paragraph::new(error.clone()).wrap(Wrap { trim: true }),
                verdict_area,
            );
            return;
        }
        Some(Ok(comparison)) => comparison,
    };
    let verdict = match comparison.first_difference() {
        None => Line::from(vec![
            Span::from("✓ agree").fg(Color::Green).bold(),
            Span::from(format!(
                " · {scope} · {} row(s)",
                comparison.summary.value.len()
            )),
        ]),
        Some(row) => Line::from(vec![
            Span::from("✗ differ").fg(Color::Red).bold(),
            Span::from(format!(" · {scope} · first at row {row}: run verify")),
        ]),
    };
    let timing = Line::from(format!(
        "summary {} · history {}",
        duration(comparison.summary.took),
        duration(comparison.history.took)
    ));
    frame.render_widget(
        Paragraph::new(vec![verdict, timing]).wrap(Wrap { trim: true }),
        verdict_area,
    );
    let [left, right] =
        Layout::horizontal([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).areas(tables);
    for (area, name, timed) in [
        (left, "summary", &comparison.summary),
        (right, "history", &comparison.history),
    ] {
        let block = Block::bordered().title(format!(" {name} · {} ", duration(timed.took)));
        let columns = if narrow {
            Columns::Compact
        } else {
            Columns::TitleAndTime
        };
        frame.render_widget(workflow_table(&timed.value, block, columns), area);
    }
}

/// Which columns a table of workflows has room for.
#[derive(Clone, Copy)]
enum Columns {
    /// Title, time to the second, last run.
    Full,
    /// Title and time to the second.
    TitleAndTime,
    /// Title and a short time.
    Compact,
}

fn workflow_table<'a>(
    workflows: &'a [RecentWorkflow],
    block: Block<'a>,
    columns: Columns,
) -> Table<'a> {
    let (header, widths) = match columns {
        Columns::Full => (
            Row::new(["Workflow", "Last used (UTC)", "Last run"]),
            vec![
                Constraint::Min(10),
                Constraint::Length(19),
                Constraint::Length(10),
            ],
        ),
        Columns::TitleAndTime => (
            Row::new(["Workflow", "Last used (UTC)"]),
            vec![Constraint::Min(6), Constraint::Length(19)],
        ),
        Columns::Compact => (
            Row::new(["Workflow", "Used (UTC)"]),
            vec![Constraint::Min(4), Constraint::Length(11)],
        ),
    };
    let rows = workflows.iter().map(|w| {
        Row::new(match columns {
            Columns::Full => vec![
                w.title.clone(),
                time(w.last_used_at),
                w.last_saved_run_id.to_string(),
            ],
            Columns::TitleAndTime => vec![w.title.clone(), time(w.last_used_at)],
            Columns::Compact => vec![w.title.clone(), short_time(w.last_used_at)],
        })
    });
    debug_assert!(workflows.len() <= RECENT_LIMIT as usize);
    Table::new(rows, widths)
        .header(header.style(Style::new().add_modifier(Modifier::BOLD)))
        .block(block)
}
