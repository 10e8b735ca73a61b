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
    let advice = match failure.kind {
        FailureKind::Behind => " — run `recents migrate up`",
        FailureKind::Ahead => " — use a newer recents",
        FailureKind::InvalidUrl => " — fix DATABASE_URL and restart",
        FailureKind::Unavailable | FailureKind::Other => "",
    };
    let retry = match retry_in {
        Some(seconds) => format!(" · retrying in {seconds} s (r: now)"),
        None => String::new(),
    };
    Some(format!("{}{advice}{retry}", failure.message))
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

const HELP: &[(&str, &str)] = &[
    ("Everywhere", ""),
    ("1 / 2, Tab", "switch screen"),
    ("r", "reload (or reconnect now)"),
    ("?", "this help"),
    ("q, Ctrl-C", "quit"),
    ("Workspaces", ""),
    ("↑↓ j k, g G", "select"),
    ("⏎", "open the workspace"),
    ("/", "filter by name (⏎ apply, Esc cancel)"),
    ("Esc", "clear the filter"),
    ("s", "sort: id ↑, id ↓, name ↑, name ↓"),
    ("n p, PgDn PgUp", "next, previous page"),
    ("Workspace", ""),
    ("↑↓ j k", "whole workspace or one member"),
    ("h", "same answer from history, timed"),
    ("Esc", "back to Workspaces"),
];

/// Draws the help overlay over the middle of `area`.
pub fn help(frame: &mut Frame, area: Rect) {
    let popup = area.centered(
        Constraint::Length(area.width.saturating_sub(4).min(56)),
        Constraint::Length(area.height.saturating_sub(2).min(HELP.len() as u16 + 2)),
    );
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(key, what)| {
            if what.is_empty() {
                Line::from(Span::from(*key).bold().underlined())
            } else {
                Line::from(vec![
                    Span::from(format!("  {key:<16}")).bold(),
                    Span::from(*what),
                ])
            }
        })
        .collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Keys · Esc closes ")),
        popup,
    );
}
