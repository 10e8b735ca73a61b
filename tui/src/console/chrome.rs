//! What surrounds every screen: the tab bar, the database banner, the
//! status line, the footer of keys and the help overlay.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Tabs, Wrap};

use super::app::{App, Link, Tab};
use super::worker::FailureKind;

/// Draws the tab bar, with the database on the right when it fits.
pub fn tab_bar(app: &App, frame: &mut Frame, area: Rect) {
    let names: Vec<String> = Tab::ALL
        .iter()
        .map(|tab| {
            let name = match (tab, &app.workspace) {
                (Tab::Workspaces, _) => "Workspaces".to_owned(),
                (Tab::Workspace, Some(ws)) => match &ws.overview {
                    Some(o) => format!("Workspace {}", o.name),
                    None => format!("Workspace #{}", ws.id),
                },
                (Tab::Workspace, None) => "Workspace".to_owned(),
                (Tab::Backfill, _) => "Backfill".to_owned(),
                (Tab::Queue, _) => "Queue".to_owned(),
            };
            format!("{} {name}", tab.key())
        })
        .collect();
    // Each title is padded by a space on both sides, with a divider between.
    let tabs_width: usize =
        names.iter().map(|n| n.chars().count() + 2).sum::<usize>() + names.len() - 1;
    let titles: Vec<Line> = Tab::ALL
        .iter()
        .zip(names)
        .map(|(tab, name)| {
            let line = Line::from(name);
            if *tab == Tab::Workspace && app.workspace.is_none() {
                line.style(Style::new().add_modifier(Modifier::DIM))
            } else {
                line
            }
        })
        .collect();
    let selected = Tab::ALL.iter().position(|t| *t == app.tab);
    let tabs = Tabs::new(titles)
        .select(selected)
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .divider("│");
    let url = format!(" {} ", app.database);
    let url_width = url.chars().count();
    if (area.width as usize) >= tabs_width + url_width {
        let [left, right] =
            Layout::horizontal([Constraint::Min(0), Constraint::Length(url_width as u16)])
                .areas(area);
        frame.render_widget(tabs, left);
        frame.render_widget(Paragraph::new(url).dim(), right);
    } else {
        frame.render_widget(tabs, area);
    }
}

/// The banner's text for a database that is down, behind, ahead or
/// misnamed; `None` while all is well.
pub fn banner_text(app: &App) -> Option<String> {
    let Link::Failed { failure, retry_in } = &app.link else {
        return None;
    };
    // The countdown first: on a narrow terminal the message is what gets cut.
    let retry = match retry_in {
        Some(seconds) => format!("retry in {seconds} s (r: now) · "),
        None => String::new(),
    };
    let advice = match failure.kind {
        FailureKind::Ahead => " — use a newer recents",
        FailureKind::InvalidUrl => " — fix DATABASE_URL and restart",
        FailureKind::Behind | FailureKind::Unavailable | FailureKind::Other => "",
    };
    Some(format!("{retry}{}{advice}", failure.message))
}

/// Lines the banner takes at `width` (at most 3).
pub fn banner_height(text: &str, width: u16) -> u16 {
    let width = usize::from(width.max(1));
    text.chars().count().div_ceil(width).clamp(1, 3) as u16
}

/// Draws the banner.
pub fn banner(text: &str, frame: &mut Frame, area: Rect) {
    frame.render_widget(
        Paragraph::new(text.to_owned())
            .style(
                Style::new()
                    .fg(Color::White)
                    .bg(Color::Red)
                    .add_modifier(Modifier::BOLD),
            )
            .wrap(Wrap { trim: true }),
        area,
    );
}

/// Draws the footer: the keys of the screen on display.
pub fn footer(keys: &[(&str, &str)], frame: &mut Frame, area: Rect) {
    let mut spans = Vec::with_capacity(keys.len() * 3);
    for (key, what) in keys {
        spans.push(Span::from(format!(" {key} ")).reversed());
        spans.push(Span::from(format!(" {what} ")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Draws the status line: the last error or notice.
pub fn status(text: &str, frame: &mut Frame, area: Rect) {
    frame.render_widget(Paragraph::new(text.to_owned()).fg(Color::Yellow), area);
}

const HELP_EVERYWHERE: &[(&str, &str)] = &[
    ("1 2 3 4, Tab", "switch screen (4: the queue)"),
    ("r", "reload / reconnect"),
    ("?", "this help"),
    ("q, Ctrl-C", "quit"),
];

const HELP_WORKSPACES: &[(&str, &str)] = &[
    ("↑↓ j k g G", "select"),
    ("⏎", "open the workspace"),
    ("/", "filter by name: ⏎ apply, Esc cancel"),
    ("Esc", "clear the filter"),
    ("s", "sort: id ↑ id ↓ name ↑ name ↓"),
    ("n p, PgDn PgUp", "next, previous page"),
];

const HELP_BACKFILL: &[(&str, &str)] = &[
    ("b", "backfill the summary from history"),
    ("Esc", "cancel it; the checkpoint stays, b resumes"),
    ("v", "verify every summary row against history"),
    ("x x", "repair exactly the drift verify finds"),
    ("t", "target: every workspace or the one open"),
];

const HELP_QUEUE: &[(&str, &str)] = &[
    ("", "refreshes every second"),
    ("jobs/s", "runs ended in the last 60 s (by"),
    ("", "finished_at): done, errored, failed"),
    ("Workers", "jobs held, age of the last heartbeat"),
    ("↑↓ j k", "scroll the users"),
    ("x x", "reset jobs stalled 60 s (no heartbeat):"),
    ("", "requeued, or failed at their 3rd reset"),
    ("r", "refresh now"),
];

const HELP_WORKSPACE: &[(&str, &str)] = &[
    ("↑↓ j k", "whole workspace or a member"),
    ("h", "same answer from history, timed"),
    ("Esc", "back to Workspaces"),
];

/// The help's lines for the screen on display.
fn help_lines(tab: Tab) -> Vec<Line<'static>> {
    let (name, keys) = match tab {
        Tab::Workspaces => ("Workspaces", HELP_WORKSPACES),
        Tab::Workspace => ("Workspace", HELP_WORKSPACE),
        Tab::Backfill => ("Backfill", HELP_BACKFILL),
        Tab::Queue => ("Queue", HELP_QUEUE),
    };
    let mut lines = Vec::new();
    for (section, keys) in [(name, keys), ("Everywhere", HELP_EVERYWHERE)] {
        lines.push(Line::from(Span::from(section).bold().underlined()));
        for (key, what) in keys {
            lines.push(Line::from(vec![
                Span::from(format!(" {key:<15}")).bold(),
                Span::from(*what),
            ]));
        }
    }
    lines
}

/// Draws the help overlay for the screen on display over the middle of
/// `area`, scrolled down by `scroll` lines when it does not fit.
pub fn help(tab: Tab, scroll: u16, frame: &mut Frame, area: Rect) {
    let lines = help_lines(tab);
    let width = area.width.saturating_sub(2).min(56);
    // Lines wrap on a narrow terminal rather than being cut: count the rows
    // they take at the popup's inner width.
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let rows: u16 = lines
        .iter()
        .map(|line| line.width().div_ceil(inner).max(1) as u16)
        .sum();
    let popup = area.centered(
        Constraint::Length(width),
        Constraint::Length(area.height.saturating_sub(2).min(rows + 2)),
    );
    let fits = popup.height >= rows + 2;
    let title = if fits {
        " Keys · Esc closes "
    } else {
        " Keys · ↑↓ scroll · Esc "
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0))
            .block(Block::bordered().title(title)),
        popup,
    );
}
