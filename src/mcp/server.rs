//! The MCP server itself: the `Fleet` handler that owns the tool router,
//! the tasks of long calls and the resource subscriptions, and serving it
//! on stdio (loopback HTTP is [`super::http`]).
//!
//! It is started by the client (an agent launching its tool servers), so
//! it runs in the client's process tree: sessions it starts record the
//! calling session as their parent, and each session's host sees the
//! client's session behind every request it makes (DESIGN §10).

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, CreateTaskResult, GetTaskParams,
    GetTaskResult, Implementation, ListResourceTemplatesResult, ListResourcesResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ResourceUpdatedNotificationParam, ServerCapabilities, ServerConfig, SubscribeRequestParams,
    SubscriptionFilter, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::task_manager::{TaskExit, TaskManager, TaskOptions};
use rmcp::{ErrorData, RoleServer, ServerHandler, tool_handler};

use crate::mcp::progress::Long;
use crate::mcp::reply::ToolError;
use crate::mcp::resources::{self, AbortOnDrop};
use crate::mcp::work::Work;
use crate::store::paths::StateRoot;

/// What an agent reads first about this server.
const INSTRUCTIONS: &str = "\
reins drives AI coding-agent sessions (Claude Code, Codex, Gemini CLI, OpenCode, any terminal \
program). Start a worker with start_session (give it a first task with `context`), hand it \
work with send_message (verified delivery: you get the message id and the turn it started), \
block until its turn is done with wait (until task_complete), then read its answer with \
read_screen or read_logs. session_status and list_sessions say where sessions stand; \
read_events pages through what happened. approve/deny answer a worker's pending approval \
request; interrupt stops a turn; stop_session ends a worker and everything it started. \
dispatch hands one task to whichever configured agent is available, checks the result \
(done checks, a verifier) and fails over; chain_run runs a chain file of such steps. \
wait and dispatch report progress and can be cancelled. Errors come back as results with \
isError and a hint saying what to do.";

/// The reins MCP server: every tool, resource and task of one client.
#[derive(Clone)]
pub(crate) struct Fleet {
    pub(crate) state: StateRoot,
    tools: ToolRouter<Fleet>,
    tasks: TaskManager,
    /// Work this server runs that must end with it (dispatches).
    pub(crate) work: Arc<Work>,
    /// The resources this client subscribed to.
    subscriptions: resources::Shared,
}

impl Fleet {
    pub(crate) fn new(state: StateRoot) -> Fleet {
        Fleet {
            state,
            tools: Fleet::session_tools() + Fleet::orchestration_tools(),
            tasks: TaskManager::new(),
            work: Arc::new(Work::default()),
            subscriptions: resources::Shared::default(),
        }
    }

    /// The same server for another client (an HTTP session): the same
    /// tools, tasks and dispatches, its own subscriptions.
    pub(crate) fn for_client(&self) -> Fleet {
        Fleet { subscriptions: resources::Shared::default(), ..self.clone() }
    }

    /// The tools, as `tools/list` lists them.
    #[cfg(test)]
    pub(crate) fn tool_list(&self) -> Vec<rmcp::model::Tool> {
        self.tools.list_all()
    }

    /// Ends what this server still runs (cancels dispatches and waits
    /// for them to stop their sessions); for when the client went away.
    pub(crate) async fn shut_down(&self) {
        self.tasks.shutdown();
        self.work.stop_all().await;
    }

    /// `tools/call` of a long tool, run as a task the client polls
    /// (`tasks/get`) and may cancel (`tasks/cancel`).
    fn as_task(&self, request: CallToolRequestParams) -> Result<CallToolResponse, ErrorData> {
        let fleet = self.clone();
        let name = request.name.to_string();
        let arguments = serde_json::Value::Object(request.arguments.unwrap_or_default());
        let options = TaskOptions::new().with_ttl_ms(None).with_status_message("started");
        // Arguments are checked before the task exists, as a plain call does.
        let call = match LongCall::parse(&name, arguments) {
            Ok(call) => call,
            Err(detail) => return Ok(bad_arguments(&name, &detail)),
        };
        let task = self.tasks.spawn(options, move |context| {
            Box::pin(async move {
                let long = Long::of_task(context);
                let result = call.run(&fleet, &long).await;
                if long.cancel_requested() {
                    return Err(TaskExit::Cancelled);
                }
                result.map_err(TaskExit::Error)
            })
        });
        Ok(CallToolResponse::Task(CreateTaskResult::new(task)))
    }
}

/// The tools that may run as tasks, with their arguments.
enum LongCall {
    Wait(crate::mcp::sessions::WaitArgs),
    Send(crate::mcp::sessions::SendArgs),
    Dispatch(crate::mcp::orchestration::DispatchArgs),
}

impl LongCall {
    fn parse(name: &str, arguments: serde_json::Value) -> Result<LongCall, String> {
        fn args<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, String> {
            serde_json::from_value(v).map_err(|err| err.to_string())
        }
        Ok(match name {
            "wait" => LongCall::Wait(args(arguments)?),
            "send_message" => LongCall::Send(args(arguments)?),
            "dispatch" => LongCall::Dispatch(args(arguments)?),
            _ => unreachable!("only long tools run as tasks"),
        })
    }

    /// Whether this call runs long enough to be a task: a wait, a
    /// dispatch, a message followed until its turn ends.
    fn is_long(request: &CallToolRequestParams) -> bool {
        match request.name.as_ref() {
            "wait" | "dispatch" => true,
            "send_message" => request
                .arguments
                .as_ref()
                .is_some_and(|a| a.get("follow").and_then(|f| f.as_str()) == Some("turn")),
            _ => false,
        }
    }

    async fn run(
        self,
        fleet: &Fleet,
        long: &Long,
    ) -> Result<rmcp::model::CallToolResult, ErrorData> {
        use rmcp::handler::server::tool::IntoCallToolResult;
        let response = match self {
            LongCall::Wait(a) => fleet.wait_for(a, long).await.into_call_tool_result(),
            LongCall::Send(a) => fleet.send(a, long).await.into_call_tool_result(),
            LongCall::Dispatch(a) => fleet.dispatch_with(a, long).await.into_call_tool_result(),
        }?;
        match response {
            CallToolResponse::Complete(result) => Ok(result),
            _ => Err(ErrorData::internal_error("a task's tool answered no result", None)),
        }
    }
}

/// rmcp answers arguments that do not fit a tool's schema with a tool
/// error of its own wording; they get reins' shape, like every other
/// refusal.
fn with_reins_argument_errors(tool: &str, response: CallToolResponse) -> CallToolResponse {
    const PREFIX: &str = "failed to deserialize parameters: ";
    let CallToolResponse::Complete(result) = &response else { return response };
    let detail = (result.is_error == Some(true) && result.meta.is_none())
        .then(|| result.content.first().and_then(|c| c.as_text()))
        .flatten()
        .and_then(|text| text.text.strip_prefix(PREFIX).map(str::to_string));
    match detail {
        Some(detail) => bad_arguments(tool, &detail),
        None => response,
    }
}

/// The answer to arguments that do not fit `tool`'s schema.
fn bad_arguments(tool: &str, detail: &str) -> CallToolResponse {
    use rmcp::handler::server::tool::IntoCallToolResult;
    ToolError::invalid(format!("bad arguments for {tool}: {detail}"))
        .hint(format!("tools/list has the input schema of {tool}"))
        .into_call_tool_result()
        .expect("a tool error is a result")
}

#[tool_handler(router = self.tools)]
impl ServerHandler for Fleet {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_tasks()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("reins", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS.to_string())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let tasks = context.client_capabilities().is_some_and(|caps| caps.supports_tasks());
        if tasks && LongCall::is_long(&request) {
            return self.as_task(request);
        }
        let name = request.name.to_string();
        let response = self.tools.call(ToolCallContext::new(self, request, context)).await?;
        Ok(with_reins_argument_errors(&name, response))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.resources()
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(self.resource_templates())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        Ok(self.read(&request.uri).await?.into())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let (tx, mut changed) = tokio::sync::mpsc::unbounded_channel();
        let watch = AbortOnDrop(self.watch(&request.uri, tx)?);
        let peer = context.peer.clone();
        let task = tokio::spawn(async move {
            let _watch = watch;
            while let Some(uri) = changed.recv().await {
                let updated = ResourceUpdatedNotificationParam::new(uri);
                if peer.notify_resource_updated(updated).await.is_err() {
                    return;
                }
            }
        });
        self.subscriptions.add(request.uri, task);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.subscriptions.remove(&request.uri);
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let mut accepted = SubscriptionFilter::new();
        accepted.resource_subscriptions = requested.resource_subscriptions.clone();
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let (tx, mut changed) = tokio::sync::mpsc::unbounded_channel();
        let uris = context.accepted().resource_subscriptions.clone().unwrap_or_default();
        let mut watches = Vec::new();
        for uri in &uris {
            watches.push(AbortOnDrop(self.watch(uri, tx.clone())?));
        }
        drop(tx);
        loop {
            tokio::select! {
                _ = context.cancelled() => return Ok(()),
                uri = changed.recv() => match uri {
                    Some(uri) => {
                        if context.sink().notify_resource_updated(uri).await.is_err() {
                            return Ok(());
                        }
                    }
                    // Every watched session ended: nothing more will change.
                    None => return Ok(()),
                },
            }
        }
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        Ok(GetTaskResult::new(self.tasks.get_task(&request.task_id)?))
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.tasks.cancel_task(&request.task_id)
    }
}

/// Serves `fleet` on standard input and output until the client closes
/// them (or goes away), then ends what it still runs.
pub(crate) async fn serve_stdio(fleet: Fleet) -> Result<(), crate::error::CliError> {
    use rmcp::ServiceExt;
    let service = fleet.clone().serve(rmcp::transport::stdio()).await.map_err(|err| {
        crate::error::CliError::failure(format!("the MCP client did not initialize: {err}"))
            .hint("`reins mcp` is started by an MCP client (an agent), which speaks first")
    })?;
    let _ = service.waiting().await;
    fleet.shut_down().await;
    Ok(())
}
