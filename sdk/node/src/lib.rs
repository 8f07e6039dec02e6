//! `promptos.node`: the Rust SDK (`promptos-sdk`) for Node.js.
//!
//! One [`NativeClient`] wraps the SDK's async client: its cache, its change feed (NATS
//! or SSE) and fleet reports run on a Tokio runtime of this addon's own ([`runtime`]),
//! never on Node's thread. Cached calls answer synchronously (a hash lookup plus
//! rendering); everything that may wait returns a promise settled from the runtime.
//! Change messages reach JavaScript through one threadsafe function per client, unref'd
//! so that it never keeps a process alive. The idiomatic surface is the JS layer around
//! it (`sdk/node/lib`).

mod config;
mod errors;
mod keeper;

use arc_swap::ArcSwapOption;
use futures::FutureExt;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ErrorStrategy, ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, JsFunction, JsObject};
use napi_derive::napi;
use promptos_sdk::minijinja::Value as Vars;
use promptos_sdk::Prompts;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The longest a synchronous call waits for the server when the cache cannot answer on
/// its own (see [`NativeClient::now`]).
const SYNC_BUDGET: Duration = Duration::from_millis(3);

pub use config::Options;

/// One runtime for every client of the process (and of its worker threads): two
/// threads carry every feed, fetch and report, and none of them keeps Node alive.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("promptos-node")
            .enable_all()
            .build()
            .expect("the PromptOS runtime starts")
    })
}

/// What a client's calls and its keeper share.
pub struct Shared {
    prompts: Prompts,
    in_use: keeper::InUse,
    snapshot: Option<std::path::PathBuf>,
    keeper: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(task) = self.keeper.lock().ok().and_then(|mut t| t.take()) {
            task.abort();
        }
    }
}

/// Runs `work` on the runtime; the promise settles with its answer (`Ok` turned into a
/// JS value on Node's thread by `to_js`).
fn promise<T, V, F>(env: &Env, work: F, to_js: impl FnOnce(Env, T) -> Result<V> + Send + 'static) -> Result<JsObject>
where
    T: Send + 'static,
    V: ToNapiValue + 'static,
    F: Future<Output = std::result::Result<T, napi::Error>> + Send + 'static,
{
    let (deferred, promise) = env.create_deferred::<V, _>()?;
    runtime().spawn(async move {
        match work.await {
            Ok(value) => deferred.resolve(move |env| to_js(env, value)),
            Err(e) => deferred.reject(e),
        }
    });
    Ok(promise)
}

/// Template variables from the JSON the JS layer sends (`null`/empty: none).
fn variables(json: Option<String>) -> Result<Vars> {
    match json.as_deref() {
        None | Some("") | Some("null") => Ok(Vars::from_iter(std::iter::empty::<(Vars, Vars)>())),
        Some(text) => {
            let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
                .map_err(|e| napi::Error::from_reason(format!("variables must be a plain object: {e}")))?;
            Ok(Vars::from_serialize(&map))
        }
    }
}

/// Starts a client (loads the snapshot, starts the feed); resolves to a [`NativeClient`].
#[napi(ts_return_type = "Promise<NativeClient>")]
pub fn connect(env: Env, options: Options) -> Result<JsObject> {
    let ttl = options.ttl()?;
    let snapshot = options.snapshot_path.clone().map(Into::into);
    let builder = options.builder()?;
    promise(
        &env,
        async move {
            let prompts = builder.build().await.map_err(errors::to_js)?;
            let shared = Arc::new(Shared {
                prompts,
                in_use: keeper::InUse::default(),
                snapshot,
                keeper: std::sync::Mutex::new(None),
            });
            let task = tokio::spawn(keeper::keep(Arc::downgrade(&shared), ttl));
            *shared.keeper.lock().expect("keeper lock") = Some(task.abort_handle());
            Ok(shared)
        },
        |_, shared| Ok(NativeClient { shared: ArcSwapOption::new(Some(shared)) }),
    )
}

/// A client of one PromptOS server; `promptos.Prompts` in `lib/` is its face.
#[napi]
pub struct NativeClient {
    shared: ArcSwapOption<Shared>,
}

/// Which answer a call wants.
#[derive(Clone, Copy)]
enum Call {
    Chat,
    For,
    ChatFor,
    Template,
}

impl Call {
    fn parse(what: &str) -> Result<Self> {
        Ok(match what {
            "chat" => Call::Chat,
            "for" => Call::For,
            "chatFor" => Call::ChatFor,
            "template" => Call::Template,
            other => return Err(napi::Error::from_reason(format!("unknown call {other}"))),
        })
    }
}

/// The answer of `call` as JSON for the JS layer.
async fn answer(
    shared: Arc<Shared>,
    call: Call,
    name: String,
    env: String,
    subject: String,
    vars: Vars,
) -> Result<String> {
    let p = &shared.prompts;
    let json = match call {
        Call::Chat => chat_json(p.get_chat(&name, &env, &vars).await.map_err(errors::to_js)?),
        Call::ChatFor => chat_json(p.get_chat_for(&name, &env, &subject, &vars).await.map_err(errors::to_js)?),
        Call::For => {
            let served = p.get_for(&name, &env, &subject, &vars).await.map_err(errors::to_js)?;
            serde_json::json!({"text": served.text, "version": served.version_string, "experimentId": served.experiment_id})
        }
        Call::Template => {
            let template = p.get_template(&name, &env).await.map_err(errors::to_js)?;
            let mut json = serde_json::to_value(&template).map_err(|e| napi::Error::from_reason(e.to_string()))?;
            json["is_stale"] = serde_json::Value::Bool(p.is_prompt_stale(&name, &env));
            json
        }
    };
    Ok(json.to_string())
}

fn chat_json(chat: promptos_sdk::ChatPrompt) -> serde_json::Value {
    let messages: Vec<serde_json::Value> =
        chat.messages.iter().map(|m| serde_json::json!({"role": m.role, "content": m.content})).collect();
    serde_json::json!({
        "messages": messages,
        "config": chat.config,
        "version": chat.version_string,
        "experimentId": chat.experiment_id,
    })
}

impl NativeClient {
    fn open(&self) -> Result<Arc<Shared>> {
        self.shared.load_full().ok_or_else(errors::closed)
    }

    /// Answers `work` now if it completes without waiting (cached, or the server was
    /// unreachable a moment ago: the last known answer) or within [`SYNC_BUDGET`] (a
    /// server that refuses connections fails that fast, and the last known answer is
    /// served); otherwise says the prompt is not cached yet, while `work` goes on in the
    /// background and caches it. Never holds Node up longer than the budget.
    fn now<T: Send + 'static>(
        &self,
        shared: &Arc<Shared>,
        name: &str,
        env: &str,
        work: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        shared.in_use.note(name, env);
        let mut work = Box::pin(work);
        let first_poll = {
            // The first poll may start a request, which needs the runtime's context.
            let _inside = runtime().enter();
            (&mut work).now_or_never()
        };
        if let Some(answer) = first_poll {
            return answer;
        }
        match runtime().block_on(async { tokio::time::timeout(SYNC_BUDGET, &mut work).await }) {
            Ok(answer) => answer,
            Err(_) => {
                runtime().spawn(async move {
                    let _ = work.await;
                });
                Err(errors::not_cached(name, env))
            }
        }
    }
}

#[napi]
impl NativeClient {
    /// The text prompt `name` live in `env`, rendered with `variables` (JSON), from the
    /// cache: throws `Unavailable` (and starts fetching it) when it is not cached.
    #[napi]
    pub fn get(&self, name: String, env: String, variables: Option<String>) -> Result<String> {
        let shared = self.open()?;
        let vars = self::variables(variables)?;
        if let Some(served) = shared.prompts.get_cached(&name, &env, &vars) {
            shared.in_use.note(&name, &env);
            return served.map_err(errors::to_js);
        }
        let p = shared.prompts.clone();
        let (n, e) = (name.clone(), env.clone());
        self.now(&shared, &name, &env, async move { p.get(&n, &e, &vars).await.map_err(errors::to_js) })
    }

    /// `get`, fetching the prompt when it is not cached (a promise).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn fetch(&self, env: Env, name: String, environment: String, variables: Option<String>) -> Result<JsObject> {
        let shared = self.open()?;
        let vars = self::variables(variables)?;
        shared.in_use.note(&name, &environment);
        promise(
            &env,
            async move { shared.prompts.get(&name, &environment, &vars).await.map_err(errors::to_js) },
            |_, text| Ok(text),
        )
    }

    /// `call` (`chat`, `for`, `chatFor`, `template`) answered from the cache, as JSON;
    /// throws `Unavailable` (and starts fetching) when it is not cached.
    #[napi]
    pub fn call(
        &self,
        call: String,
        name: String,
        env: String,
        subject: Option<String>,
        variables: Option<String>,
    ) -> Result<String> {
        let shared = self.open()?;
        let (call, vars) = (Call::parse(&call)?, self::variables(variables)?);
        let work = answer(shared.clone(), call, name.clone(), env.clone(), subject.unwrap_or_default(), vars);
        self.now(&shared, &name, &env, work)
    }

    /// `call`, fetching when not cached (a promise of JSON).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn call_async(
        &self,
        env: Env,
        call: String,
        name: String,
        environment: String,
        subject: Option<String>,
        variables: Option<String>,
    ) -> Result<JsObject> {
        let shared = self.open()?;
        let (call, vars) = (Call::parse(&call)?, self::variables(variables)?);
        shared.in_use.note(&name, &environment);
        promise(&env, answer(shared, call, name, environment, subject.unwrap_or_default(), vars), |_, json| Ok(json))
    }

    /// Loads every prompt live in `environment`; resolves to how many.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn prefetch(&self, env: Env, environment: String) -> Result<JsObject> {
        let shared = self.open()?;
        shared.in_use.note_env(&environment);
        promise(&env, async move { shared.prompts.prefetch(&environment).await.map_err(errors::to_js) }, |_, n| {
            Ok(n as u32)
        })
    }

    /// Loads `environment`; when the server cannot be reached, makes what the snapshot
    /// holds servable instead (and fails only without one).
    #[napi(ts_return_type = "Promise<number>")]
    pub fn ready(&self, env: Env, environment: String) -> Result<JsObject> {
        let shared = self.open()?;
        shared.in_use.note_env(&environment);
        promise(&env, config::ready(shared, environment), |_, n| Ok(n as u32))
    }

    /// Whether what is served may be older than what is deployed: for the client, or
    /// for `name` in `env`.
    #[napi]
    pub fn is_stale(&self, name: Option<String>, env: Option<String>) -> Result<bool> {
        let shared = self.open()?;
        Ok(match (name, env) {
            (Some(name), Some(env)) => shared.prompts.is_prompt_stale(&name, &env),
            _ => shared.prompts.is_stale(),
        })
    }

    /// This process's id in the server's fleet view; null when reports are off.
    #[napi(getter)]
    pub fn instance_id(&self) -> Result<Option<String>> {
        Ok(self.open()?.prompts.instance_id().map(str::to_owned))
    }

    /// Calls `listener(json)` on Node's thread for every change the feed delivers, after
    /// the cache holds the new version. Does not keep the process alive.
    #[napi]
    pub fn listen(&self, env: Env, listener: JsFunction) -> Result<()> {
        let shared = self.open()?;
        let mut tsfn: ThreadsafeFunction<String, ErrorStrategy::Fatal> = listener.create_threadsafe_function(
            0,
            |ctx: napi::threadsafe_function::ThreadSafeCallContext<String>| {
                ctx.env.create_string(&ctx.value).map(|s| vec![s])
            },
        )?;
        tsfn.unref(&env)?;
        shared.prompts.on_change(move |change| {
            if let Ok(json) = serde_json::to_string(change) {
                tsfn.call(json, ThreadsafeFunctionCallMode::NonBlocking);
            }
        });
        Ok(())
    }

    /// Stops the feed, the reports and the keeper; later calls throw.
    #[napi]
    pub fn close(&self) {
        if let Some(shared) = self.shared.swap(None) {
            // The last reference may be a task's; the runtime drops it there.
            runtime().spawn(async move { drop(shared) });
        }
    }
}
