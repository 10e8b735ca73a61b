//! The console's state and what keys and answers do to it. No terminal and
//! no database here: [`App::handle_key`], [`App::apply`] and [`App::tick`]
//! change state and return the [`Request`]s to run, so tests drive the very
//! same logic with a database and a `TestBackend`.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use recents_service::WorkspaceId;

use super::screens::backfill::{BackfillState, Coverage};
use super::screens::queue::QueueState;
use super::screens::workspace::WorkspaceState;
use super::screens::workspaces::WorkspacesState;
use super::worker::{Failure, FailureKind, Request, Response};

/// Seconds between two attempts to reach a database that is down or behind.
pub const RETRY_SECONDS: u32 = 5;

/// The screens, in tab order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    /// The workspace directory.
    Workspaces,
    /// One workspace's recent workflows.
    Workspace,
    /// Backfill, verify and repair of the summary.
    Backfill,
    /// The fair execution queue: counts, next in line, stalled jobs.
    Queue,
}

impl Tab {
    /// Every tab, in order.
    pub const ALL: [Tab; 4] = [Tab::Workspaces, Tab::Workspace, Tab::Backfill, Tab::Queue];

    /// The key that switches to it.
    pub fn key(self) -> char {
        match self {
            Tab::Workspaces => '1',
            Tab::Workspace => '2',
            Tab::Backfill => '3',
            Tab::Queue => '4',
        }
    }
}

/// The console's link to the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// A connection attempt is under way.
    Connecting,
    /// Connected, schema current.
    Connected,
    /// Down, behind, ahead or misconfigured.
    Failed {
        /// Why.
        failure: Failure,
        /// Seconds to the next attempt; `None` when retrying cannot help.
        retry_in: Option<u32>,
    },
}

/// Everything the console shows.
#[derive(Debug)]
pub struct App {
    /// The database URL, password hidden.
    pub database: String,
    /// The screen on display.
    pub tab: Tab,
    /// The link to the database.
    pub link: Link,
    /// The Workspaces screen.
    pub workspaces: WorkspacesState,
    /// The Workspace screen, once a workspace was opened.
    pub workspace: Option<WorkspaceState>,
    /// The Backfill screen.
    pub backfill: BackfillState,
    /// The Queue screen.
    pub queue: QueueState,
    /// Whether the help overlay is up.
    pub help: bool,
    /// How far the help is scrolled (on a small terminal).
    pub help_scroll: u16,
    /// The last error or notice, shown above the footer.
    pub status: Option<String>,
    /// A change that waits for `x` to be pressed again (any other key drops it).
    pub confirming: Option<Confirm>,
    /// Set when the user asked to quit.
    pub quit: bool,
}

/// A change to the database that `x` asks to confirm with a second `x`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirm {
    /// Repair the drift of the Backfill screen's target.
    Repair,
    /// Reset the Queue screen's stalled jobs.
    ResetStalled,
}

impl Confirm {
    /// What the status line asks.
    fn question(self) -> &'static str {
        match self {
            Confirm::Repair => {
                "x again repairs every drifted summary row of the target; any other key cancels"
            }
            Confirm::ResetStalled => {
                "x again resets the stalled jobs (requeued, or failed at their 3rd reset); any other key cancels"
            }
        }
    }
}

impl App {
    /// A console for `database` (already redacted), not yet connected.
    pub fn new(database: String) -> Self {
        Self {
            database,
            tab: Tab::Workspaces,
            link: Link::Connecting,
            workspaces: WorkspacesState::default(),
            workspace: None,
            backfill: BackfillState::default(),
            queue: QueueState::default(),
            help: false,
            help_scroll: 0,
            status: None,
            confirming: None,
            quit: false,
        }
    }

    /// The first requests: connect.
    pub fn start(&mut self) -> Vec<Request> {
        self.link = Link::Connecting;
        vec![Request::Connect]
    }

    fn connected(&self) -> bool {
        self.link == Link::Connected
    }

    /// Once a second: refreshes the Queue screen while it is on display
    /// (unless the last refresh is still under way), and counts down to the
    /// next connection attempt.
    pub fn tick(&mut self) -> Vec<Request> {
        if self.tab == Tab::Queue && self.connected() && !self.queue.loading {
            return self.load_queue();
        }
        if let Link::Failed {
            retry_in: Some(seconds),
            ..
        } = &mut self.link
        {
            if *seconds > 1 {
                *seconds -= 1;
            } else {
                return self.start();
            }
        }
        Vec::new()
    }

    /// What a key press does.
    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Request> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return Vec::new();
        }
        if self.tab == Tab::Workspaces && self.workspaces.editing.is_some() {
            return self.edit_filter(key);
        }
        // A change waiting for confirmation: a second x makes it, any other
        // key drops it (and does what it does).
        if let Some(confirm) = self.confirming.take() {
            self.status = None;
            if key.code == KeyCode::Char('x') {
                return self.confirmed(confirm);
            }
        }
        if self.help {
            match key.code {
                KeyCode::Char('q') => self.quit = true,
                KeyCode::Char('?') | KeyCode::Esc | KeyCode::Enter => self.help = false,
                KeyCode::Down | KeyCode::Char('j') => {
                    self.help_scroll = (self.help_scroll + 1).min(12);
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    self.help_scroll = self.help_scroll.saturating_sub(1);
                }
                _ => {}
            }
            return Vec::new();
        }
        match key.code {
            KeyCode::Char('q') => {
                self.quit = true;
                return Vec::new();
            }
            KeyCode::Char('?') => {
                self.help = true;
                self.help_scroll = 0;
                return Vec::new();
            }
            KeyCode::Char('r') => return self.reload(),
            KeyCode::Tab => {
                return match self.tab {
                    Tab::Workspaces if self.workspace.is_some() => {
                        self.tab = Tab::Workspace;
                        Vec::new()
                    }
                    Tab::Workspaces | Tab::Workspace => {
                        self.tab = Tab::Backfill;
                        Vec::new()
                    }
                    Tab::Backfill => self.show_queue(),
                    Tab::Queue => {
                        self.tab = Tab::Workspaces;
                        Vec::new()
                    }
                };
            }
            KeyCode::Char(c) if c == Tab::Queue.key() => return self.show_queue(),
            KeyCode::Char(c) if c == Tab::Backfill.key() => {
                self.tab = Tab::Backfill;
                return Vec::new();
            }
            KeyCode::Char(c) if c == Tab::Workspaces.key() => {
                self.tab = Tab::Workspaces;
                return Vec::new();
            }
            KeyCode::Char(c) if c == Tab::Workspace.key() && self.workspace.is_some() => {
                self.tab = Tab::Workspace;
                return Vec::new();
            }
            _ => {}
        }
        match self.tab {
            Tab::Workspaces => self.workspaces_key(key),
            Tab::Workspace => self.workspace_key(key),
            Tab::Backfill => self.backfill_key(key),
            Tab::Queue => self.queue_key(key),
        }
    }

    /// Switches to the Queue screen and refreshes it at once.
    fn show_queue(&mut self) -> Vec<Request> {
        self.tab = Tab::Queue;
        if self.queue.loading {
            return Vec::new();
        }
        self.load_queue()
    }

    fn load_queue(&mut self) -> Vec<Request> {
        if !self.connected() {
            return Vec::new();
        }
        self.queue.loading = true;
        vec![self.queue.request()]
    }

    fn queue_key(&mut self, key: KeyEvent) -> Vec<Request> {
        match key.code {
            KeyCode::Char('x') if self.connected() && !self.queue.resetting => {
                self.ask(Confirm::ResetStalled)
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.queue.scroll_users(1);
                Vec::new()
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.queue.scroll_users(-1);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn ask(&mut self, confirm: Confirm) -> Vec<Request> {
        self.confirming = Some(confirm);
        self.status = Some(confirm.question().to_owned());
        Vec::new()
    }

    fn confirmed(&mut self, confirm: Confirm) -> Vec<Request> {
        match confirm {
            Confirm::ResetStalled if self.connected() && !self.queue.resetting => {
                self.queue.resetting = true;
                vec![self.queue.reset_request()]
            }
            Confirm::Repair if self.connected() && !self.backfill.busy() => {
                self.backfill.checking = true;
                vec![Request::Verify {
                    target: self.backfill.target,
                    repair: true,
                }]
            }
            _ => Vec::new(),
        }
    }

    fn backfill_key(&mut self, key: KeyEvent) -> Vec<Request> {
        let connected = self.connected();
        let open = self.workspace.as_ref().map(|ws| ws.id);
        let state = &mut self.backfill;
        match key.code {
            KeyCode::Esc if state.running && !state.cancelling => {
                state.cancelling = true;
                vec![Request::CancelBackfill]
            }
            _ if state.busy() || !connected => Vec::new(),
            KeyCode::Char('b') => {
                state.start();
                vec![Request::Backfill(state.target)]
            }
            KeyCode::Char('v') => {
                state.checking = true;
                vec![Request::Verify {
                    target: state.target,
                    repair: false,
                }]
            }
            KeyCode::Char('x') => self.ask(Confirm::Repair),
            KeyCode::Char('t') => {
                let target = match (state.target, open) {
                    (Coverage::All, Some(id)) => Coverage::Workspace(id),
                    _ => Coverage::All,
                };
                state.retarget(target);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn reload(&mut self) -> Vec<Request> {
        if let Link::Failed { .. } = self.link {
            return self.start();
        }
        self.status = None;
        match self.tab {
            Tab::Workspaces => self.load_workspaces(),
            Tab::Workspace => self.load_workspace(),
            Tab::Backfill => Vec::new(),
            Tab::Queue => self.load_queue(),
        }
    }

    fn load_workspaces(&mut self) -> Vec<Request> {
        if !self.connected() {
            return Vec::new();
        }
        self.workspaces.loading = true;
        vec![self.workspaces.request()]
    }

    fn load_workspace(&mut self) -> Vec<Request> {
        match (&mut self.workspace, self.link == Link::Connected) {
            (Some(ws), true) => {
                ws.loading = true;
                vec![Request::Workspace(ws.id)]
            }
            _ => Vec::new(),
        }
    }

    fn edit_filter(&mut self, key: KeyEvent) -> Vec<Request> {
        let Some(text) = self.workspaces.editing.as_mut() else {
            return Vec::new();
        };
        match key.code {
            KeyCode::Esc => self.workspaces.editing = None,
            KeyCode::Enter => {
                self.workspaces.filter = text.trim().to_owned();
                self.workspaces.editing = None;
                self.workspaces.first_page();
                return self.load_workspaces();
            }
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char(c) => text.push(c),
            _ => {}
        }
        Vec::new()
    }

    fn workspaces_key(&mut self, key: KeyEvent) -> Vec<Request> {
        let ws = &mut self.workspaces;
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => ws.table.select_next(),
            KeyCode::Up | KeyCode::Char('k') => ws.table.select_previous(),
            KeyCode::Home | KeyCode::Char('g') => ws.table.select_first(),
            KeyCode::End | KeyCode::Char('G') => ws.table.select_last(),
            KeyCode::Char('/') => ws.editing = Some(ws.filter.clone()),
            KeyCode::Esc if !ws.filter.is_empty() => {
                ws.filter.clear();
                ws.first_page();
                return self.load_workspaces();
            }
            KeyCode::Char('s') => {
                ws.order = super::screens::workspaces::next_order(ws.order);
                ws.first_page();
                return self.load_workspaces();
            }
            KeyCode::PageDown | KeyCode::Char('n') => {
                let moved = ws.next_page();
                return self.load_workspaces_if(moved);
            }
            KeyCode::PageUp | KeyCode::Char('p') => {
                let moved = ws.previous_page();
                return self.load_workspaces_if(moved);
            }
            KeyCode::Enter => {
                if let Some(id) = ws.selected().map(|w| w.id) {
                    return self.open_workspace(id);
                }
            }
            _ => {}
        }
        Vec::new()
    }

    fn load_workspaces_if(&mut self, moved: bool) -> Vec<Request> {
        if moved {
            self.load_workspaces()
        } else {
            Vec::new()
        }
    }

    /// Opens the Workspace screen on `id`.
    pub fn open_workspace(&mut self, id: WorkspaceId) -> Vec<Request> {
        self.workspace = Some(WorkspaceState::new(id));
        self.tab = Tab::Workspace;
        self.load_workspace()
    }

    fn workspace_key(&mut self, key: KeyEvent) -> Vec<Request> {
        let connected = self.connected();
        let Some(ws) = self.workspace.as_mut() else {
            self.tab = Tab::Workspaces;
            return Vec::new();
        };
        let moved = match key.code {
            KeyCode::Esc | KeyCode::Backspace => {
                self.tab = Tab::Workspaces;
                false
            }
            KeyCode::Down | KeyCode::Char('j') => ws.select(ws.selected + 1),
            KeyCode::Up | KeyCode::Char('k') => ws.selected > 0 && ws.select(ws.selected - 1),
            KeyCode::Char('h') => {
                return match connected && ws.can_read() {
                    true => {
                        ws.comparing = true;
                        ws.comparison = None;
                        vec![Request::Compare(ws.id, ws.scope())]
                    }
                    false => Vec::new(),
                };
            }
            _ => false,
        };
        match moved && connected {
            true => vec![Request::Recent(ws.id, ws.scope())],
            false => Vec::new(),
        }
    }

    /// What an answer from the database does.
    pub fn apply(&mut self, response: Response) -> Vec<Request> {
        if let Some(failure) = response.failure()
            && failure.kind != FailureKind::Other
        {
            return self.lost(failure.clone());
        }
        match response {
            Response::Connected(_) => {
                self.link = Link::Connected;
                self.status = None;
                let mut requests = self.load_workspaces();
                requests.extend(self.load_workspace());
                if self.tab == Tab::Queue {
                    requests.extend(self.load_queue());
                }
                requests
            }
            Response::ConnectFailed(failure) => self.lost(failure),
            Response::Workspaces {
                listing,
                page,
                result,
            } => {
                let ws = &mut self.workspaces;
                if listing != ws.listing() || page != ws.page_number {
                    return Vec::new();
                }
                ws.loading = false;
                match result {
                    Ok(answer) => ws.show(answer),
                    Err(failure) => self.status = Some(failure.message),
                }
                Vec::new()
            }
            Response::Workspace { id, result } => {
                let Some(ws) = self.workspace.as_mut().filter(|ws| ws.id == id) else {
                    return Vec::new();
                };
                ws.loading = false;
                match result {
                    Ok((overview, members)) => {
                        ws.show(overview, members);
                        if ws.can_read() {
                            return vec![Request::Recent(ws.id, ws.scope())];
                        }
                    }
                    Err(failure) => {
                        ws.error = Some(failure.message.clone());
                        self.status = Some(failure.message);
                    }
                }
                Vec::new()
            }
            Response::Recent { id, scope, result } => {
                if let Some(ws) = self.workspace.as_mut()
                    && ws.id == id
                    && ws.scope() == scope
                {
                    ws.recent = Some(result.map_err(|f| f.message));
                }
                Vec::new()
            }
            Response::Compare { id, scope, result } => {
                if let Some(ws) = self.workspace.as_mut()
                    && ws.id == id
                    && ws.scope() == scope
                {
                    ws.comparing = false;
                    ws.comparison = Some(result.map_err(|f| f.message));
                }
                Vec::new()
            }
            Response::BackfillProgress(progress) => {
                if self.backfill.running {
                    self.backfill.advance(progress);
                }
                Vec::new()
            }
            Response::BackfillDone(result) => {
                self.backfill.finish(result.map_err(|f| f.message));
                Vec::new()
            }
            Response::Verified(result) => {
                self.backfill.checking = false;
                self.backfill.drift = Some(result.map_err(|f| f.message));
                Vec::new()
            }
            Response::Queue(result) => {
                self.queue.show(result.map_err(|f| f.message));
                Vec::new()
            }
            Response::ResetStalled(result) => {
                self.queue.resetting = false;
                self.queue.last_reset = Some(result.map_err(|f| f.message));
                // Show what the reset changed now, not at the next tick.
                self.load_queue()
            }
            Response::Nothing => Vec::new(),
        }
    }

    fn link_message(&self) -> String {
        match &self.link {
            Link::Failed { failure, .. } => failure.message.clone(),
            _ => "the database connection was lost".to_owned(),
        }
    }

    fn lost(&mut self, failure: Failure) -> Vec<Request> {
        let retry_in = (failure.kind != FailureKind::InvalidUrl).then_some(RETRY_SECONDS);
        self.link = Link::Failed { failure, retry_in };
        self.workspaces.loading = false;
        if let Some(ws) = self.workspace.as_mut() {
            ws.loading = false;
            ws.comparing = false;
        }
        if self.backfill.running {
            self.backfill.finish(Err(self.link_message()));
        }
        self.backfill.checking = false;
        self.queue.loading = false;
        self.queue.resetting = false;
        Vec::new()
    }
}
