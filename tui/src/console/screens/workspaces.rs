//! Workspaces: the directory, a page at a time (keyset pages from the
//! service, so 100k workspaces never load at once), sortable and filtered
//! by name.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState, Wrap};
use recents_service::admin::{
    WorkspaceCursor, WorkspaceListing, WorkspaceOrder, WorkspaceOverview, WorkspacePage,
};

use super::super::format::{count, time};
use super::super::worker::Request;

/// Workspaces per page.
pub const PAGE_SIZE: u32 = 50;

/// The Workspaces screen's state.
#[derive(Debug, Default)]
pub struct WorkspacesState {
    /// The order of the listing.
    pub order: WorkspaceOrder,
    /// The name filter in force ("" for none).
    pub filter: String,
    /// The filter being typed after `/`, if any.
    pub editing: Option<String>,
    /// The number of the page on display, from 0.
    pub page_number: usize,
    /// Where each page visited so far starts (`starts[0]` is `None`).
    starts: Vec<Option<WorkspaceCursor>>,
    /// The page on display, once loaded.
    pub page: Option<WorkspacePage>,
    /// The workspace selected when the listing changed (filter, order):
    /// selected again if the new listing holds it.
    keep: Option<i64>,
    /// The selected row.
    pub table: TableState,
    /// Whether a page is being fetched.
    pub loading: bool,
}

impl WorkspacesState {
    /// The listing of the page on display.
    pub fn listing(&self) -> WorkspaceListing {
        WorkspaceListing {
            name_contains: (!self.filter.is_empty()).then(|| self.filter.clone()),
            order: self.order,
            after: self.starts.get(self.page_number).cloned().flatten(),
            limit: PAGE_SIZE,
        }
    }

    /// The request for the page on display.
    pub fn request(&self) -> Request {
        Request::Workspaces {
            listing: self.listing(),
            page: self.page_number,
        }
    }

    /// Back to the first page (after a new order or filter).
    pub fn first_page(&mut self) {
        if let Some(ws) = self.selected() {
            self.keep = Some(ws.id.0);
        }
        self.page_number = 0;
        self.starts = vec![None];
        self.page = None;
    }

    /// Moves to the next page if there is one; true when it did.
    pub fn next_page(&mut self) -> bool {
        let Some(next) = self.page.as_ref().and_then(|p| p.next.clone()) else {
            return false;
        };
        self.starts.truncate(self.page_number + 1);
        self.starts.push(Some(next));
        self.page_number += 1;
        true
    }

    /// Moves to the previous page if there is one; true when it did.
    pub fn previous_page(&mut self) -> bool {
        if self.page_number == 0 {
            return false;
        }
        self.page_number -= 1;
        true
    }

    /// Shows a page that arrived.
    pub fn show(&mut self, page: WorkspacePage) {
        if self.starts.is_empty() {
            self.starts.push(None);
        }
        let rows = page.workspaces.len();
        let selected = match self.keep.take() {
            // A new listing: the same workspace if it is there, else the first.
            Some(id) => page
                .workspaces
                .iter()
                .position(|w| w.id.0 == id)
                .unwrap_or(0),
            None => self.table.selected().unwrap_or(0),
        };
        self.table
            .select((rows > 0).then(|| selected.min(rows.saturating_sub(1))));
        self.page = Some(page);
    }

    /// The selected workspace.
    pub fn selected(&self) -> Option<&WorkspaceOverview> {
        let page = self.page.as_ref()?;
        page.workspaces.get(self.table.selected()?)
    }
}

/// The order after `order` when `s` is pressed.
pub fn next_order(order: WorkspaceOrder) -> WorkspaceOrder {
    match order {
        WorkspaceOrder::IdAscending => WorkspaceOrder::IdDescending,
        WorkspaceOrder::IdDescending => WorkspaceOrder::NameAscending,
        WorkspaceOrder::NameAscending => WorkspaceOrder::NameDescending,
        WorkspaceOrder::NameDescending => WorkspaceOrder::IdAscending,
    }
}

fn order_label(order: WorkspaceOrder) -> &'static str {
    match order {
        WorkspaceOrder::IdAscending => "id ↑",
        WorkspaceOrder::IdDescending => "id ↓",
        WorkspaceOrder::NameAscending => "name ↑",
        WorkspaceOrder::NameDescending => "name ↓",
    }
}

/// The keys of this screen, for the footer.
pub fn keys(state: &WorkspacesState) -> &'static [(&'static str, &'static str)] {
    if state.editing.is_some() {
        &[("type", "name"), ("⏎", "apply"), ("Esc", "cancel")]
    } else {
        &[
            ("?", "help"),
            ("q", "quit"),
            ("4", "queue"),
            ("↑↓", "select"),
            ("⏎", "open"),
            ("/", "filter"),
            ("s", "sort"),
            ("n/p", "page"),
            ("r", "reload"),
        ]
    }
}

/// Draws the screen into `area`.
pub fn render(state: &mut WorkspacesState, frame: &mut Frame, area: Rect) {
    let mut title = vec![
        Span::from(" Workspaces ").bold(),
        Span::from(format!(
            "· by {} · page {} ",
            order_label(state.order),
            state.page_number + 1
        )),
    ];
    if !state.filter.is_empty() {
        title.push(Span::from(format!("· name ∋ “{}” ", state.filter)));
    }
    let mut block = Block::bordered().title(Line::from(title));
    if let Some(text) = &state.editing {
        block = block.title_bottom(Line::from(vec![
            Span::from(" / ").bold(),
            Span::from(text.clone()),
            Span::from("▏ "),
        ]));
    } else if let Some(page) = &state.page
        && !page.workspaces.is_empty()
    {
        let first = state.page_number * PAGE_SIZE as usize + 1;
        let last = first + page.workspaces.len() - 1;
        let more = if page.next.is_some() {
            "n: next page"
        } else {
            "last page"
        };
        block = block.title_bottom(Line::from(format!(" rows {first}–{last} · {more} ")));
    }

    let Some(page) = &state.page else {
        let text = if state.loading {
            "Loading workspaces…"
        } else {
            "Waiting for the database…"
        };
        frame.render_widget(Paragraph::new(text).block(block), area);
        return;
    };
    if page.workspaces.is_empty() {
        let text = if !state.filter.is_empty() {
            format!(
                "No workspace name contains “{}”. Esc clears the filter.",
                state.filter
            )
        } else if state.page_number > 0 {
            "No more workspaces. p: previous page.".to_owned()
        } else {
            "No workspaces yet. `recents seed --demo` (or starting with `recents --demo`) \
             fills an empty database with a demo."
                .to_owned()
        };
        frame.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: true }).block(block),
            area,
        );
        return;
    }

    // Narrow terminals keep the columns that identify a workspace.
    let wide = area.width >= 78;
    let header = if wide {
        vec!["ID", "Name", "Kind", "Runs", "Summary", "Last use (UTC)"]
    } else {
        vec!["ID", "Name", "Runs"]
    };
    let header = Row::new(header.into_iter().enumerate().map(|(i, h)| {
        let line = Line::from(h);
        Cell::from(if (3..5).contains(&i) || (!wide && i == 2) {
            line.right_aligned()
        } else {
            line
        })
    }))
    .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = page.workspaces.iter().map(|w| {
        let kind = match (w.is_personal, w.deleted_at.is_some()) {
            (_, true) => "deleted",
            (true, false) => "personal",
            (false, false) => "team",
        };
        let runs = Cell::from(Line::from(count(w.history_runs)).right_aligned());
        let row = if wide {
            Row::new(vec![
                Cell::from(w.id.to_string()),
                Cell::from(w.name.clone()),
                Cell::from(kind),
                runs,
                Cell::from(Line::from(count(w.summary_rows)).right_aligned()),
                Cell::from(w.last_used_at.map(time).unwrap_or_else(|| "—".into())),
            ])
        } else {
            Row::new(vec![
                Cell::from(w.id.to_string()),
                Cell::from(w.name.clone()),
                runs,
            ])
        };
        if w.deleted_at.is_some() {
            row.style(Style::new().add_modifier(Modifier::DIM))
        } else {
            row
        }
    });
    let widths: Vec<Constraint> = if wide {
        vec![
            Constraint::Length(6),
            Constraint::Min(12),
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(19),
        ]
    } else {
        vec![
            Constraint::Length(5),
            Constraint::Min(8),
            Constraint::Length(8),
        ]
    };
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("› ");
    frame.render_stateful_widget(table, area, &mut state.table);
}
