//! The Redis store's client side: keys, script arguments, replies, the
//! connection and its failures.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use redis::{ConnectionLike, RedisError, RedisResult, Script, ScriptInvocation};
use serde::Deserialize;

use super::{escape_key, unescape_key, DEFAULT_PREFIX, TTL_SLACK};
use crate::rate_limits::backend::{
    Attempt, AttemptSpec, Backend, Context, ProviderHold, Settled, Settlement, Wanted,
};
use crate::rate_limits::budgets::{Budget, BudgetUse};
use crate::rate_limits::clock::duration_millis;
use crate::rate_limits::hold::{Advice, Hold, HoldKind, StatedLimits, UnseenUse};
use crate::rate_limits::owner::{Owner, ProcessGroup};
use crate::rate_limits::pacing::{ModelStatus, PacingError};
use crate::rate_limits::profile::{Profile, KEY_SEPARATOR};
use crate::rate_limits::retry::retry_delay;
use crate::rate_limits::scheduler::{
    bucket_cap, model_key, normalize_bucket, Limits, RateLimitSnapshot, Reservation,
    SchedulerError, WaitReason,
};
use crate::rate_limits::store_url::{
    command_error, connect_error, connection_info, StoreConnectError, StoreConnection, StoreUrl,
    Timeouts,
};
use crate::rate_limits::window::{MAX_COUNT, MAX_WINDOW_MARGIN_MILLIS, WINDOW_MILLIS};
use redis::cluster::{ClusterClientBuilder, ClusterConnection};
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

const MODEL: &str = include_str!("model.lua");

fn script(operation: &str) -> Script {
    Script::new(&format!("{MODEL}\n{operation}"))
}

static ATTEMPT: LazyLock<Script> = LazyLock::new(|| script(include_str!("attempt.lua")));
static SETTLE: LazyLock<Script> = LazyLock::new(|| script(include_str!("settle.lua")));
static LOST: LazyLock<Script> = LazyLock::new(|| script(include_str!("lost.lua")));
static OWNERS: LazyLock<Script> = LazyLock::new(|| script(include_str!("owners.lua")));
static STATUS: LazyLock<Script> = LazyLock::new(|| script(include_str!("status.lua")));
static ADVISE: LazyLock<Script> = LazyLock::new(|| script(include_str!("advise.lua")));
static PROVIDER_HOLD: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("provider_hold.lua")));

/// The most connections [`RedisStore::with_connections`] opens.
pub const MAX_CONNECTIONS: usize = 64;

fn lock(slot: &Mutex<Option<Link>>) -> MutexGuard<'_, Option<Link>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The most SCAN calls one `status` or `reset` makes: a bound on the walk
/// (at 1,000 keys a call, a billion keys).
const MAX_SCAN_CALLS: usize = 1_000_000;
/// The most reservation homes remembered in process; past it the cache
/// starts again (a miss costs one extra round trip, nothing else).
const MAX_CACHED_HOMES: usize = 100_000;

/// Pacing state in Redis, shared by every machine that points at it.
///
/// Each operation is one Lua script run with `EVALSHA` (loaded again when the
/// server answers `NOSCRIPT`, after a restart or `SCRIPT FLUSH`). The
/// connection opens at [`RedisStore::open`] and again, once, when it breaks;
/// every call is bounded by the [`Timeouts`]. Any failure to reach the
/// server is [`PacingError::Unavailable`], naming the store with its
/// password masked. `Send + Sync`: each connection sits behind a mutex; by
/// default there is one, and [`RedisStore::with_connections`] allows more,
/// so that threads serving many clients (the proxy) do not take turns.
pub struct RedisStore {
    /// The server, or the cluster's seed nodes (the first names the store in messages).
    seeds: Vec<StoreUrl>,
    cluster: bool,
    timeouts: Timeouts,
    prefix: String,
    client_time: bool,
    connections: Vec<Mutex<Option<Link>>>,
    /// Where the next call starts looking for a free connection.
    next: AtomicUsize,
    homes: Mutex<HashMap<String, String>>,
}

/// An open connection: to one server, or to a cluster (which routes each
/// script to the node holding its model's slot).
enum Link {
    Single(Box<StoreConnection>),
    Cluster(Box<ClusterConnection>),
}

impl Link {
    fn like(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Link::Single(connection) => connection.raw(),
            Link::Cluster(connection) => &mut **connection,
        }
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RedisStore")
            .field("seeds", &self.seeds)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A reservation as the scripts store it: numbers as decimal strings (exact
/// to 2^53, which Lua's numbers are not past), the owner as JSON without its
/// process group, which renewals set apart.
#[derive(Deserialize)]
struct StoredReservation {
    id: String,
    seq: String,
    at: String,
    lease: String,
    ein: String,
    mout: String,
    est: String,
    owner: String,
    #[serde(default)]
    pg: String,
    #[serde(default)]
    bk: Option<String>,
}

/// What went wrong talking to the server, before it names the store.
enum Failure {
    Connect(StoreConnectError),
    Command(RedisError),
    Reply(String),
}

impl From<RedisError> for Failure {
    fn from(error: RedisError) -> Self {
        Failure::Command(error)
    }
}

impl RedisStore {
    /// A store on the server at `url`: connects now (within
    /// `timeouts.connect`), so a wrong address, password or TLS setting shows
    /// at once.
    pub fn open(url: &StoreUrl, timeouts: Timeouts) -> Result<RedisStore, PacingError> {
        Self::open_with(vec![url.clone()], false, timeouts)
    }

    /// A store on the Redis Cluster reached through `seeds` (any of its
    /// nodes; credentials and TLS from the first): every model lives in one
    /// slot, so each operation is still one script on one node. An acquire
    /// is still one round trip: its reservation's index key lives in another
    /// slot, but both commands are sent before either reply is read.
    /// `status` and `reset` scan every primary.
    pub fn open_cluster(seeds: &[StoreUrl], timeouts: Timeouts) -> Result<RedisStore, PacingError> {
        if seeds.is_empty() {
            return Err(PacingError::Unavailable {
                store: "a Redis Cluster".to_owned(),
                reason: "no seed node given".to_owned(),
            });
        }
        Self::open_with(seeds.to_vec(), true, timeouts)
    }

    fn open_with(
        seeds: Vec<StoreUrl>,
        cluster: bool,
        timeouts: Timeouts,
    ) -> Result<RedisStore, PacingError> {
        let store = RedisStore {
            seeds,
            cluster,
            timeouts,
            prefix: DEFAULT_PREFIX.to_owned(),
            client_time: false,
            connections: vec![Mutex::new(None)],
            next: AtomicUsize::new(0),
            homes: Mutex::new(HashMap::new()),
        };
        let link = store
            .connect()
            .map_err(|error| store.unavailable(Failure::Connect(error)))?;
        *lock(&store.connections[0]) = Some(link);
        Ok(store)
    }

    fn url(&self) -> &StoreUrl {
        &self.seeds[0]
    }

    /// The store as messages name it, credentials masked.
    fn masked(&self) -> String {
        if self.cluster {
            let seeds: Vec<String> = self.seeds.iter().map(StoreUrl::masked).collect();
            format!("cluster {}", seeds.join(","))
        } else {
            self.url().masked()
        }
    }

    fn connect(&self) -> Result<Link, StoreConnectError> {
        if !self.cluster {
            return StoreConnection::open(self.url(), self.timeouts)
                .map(|connection| Link::Single(Box::new(connection)));
        }
        let url = self.url();
        let failed = |error: RedisError| connect_error(url, &error, self.timeouts.connect);
        let infos = self
            .seeds
            .iter()
            .map(connection_info)
            .collect::<RedisResult<Vec<_>>>()
            .map_err(failed)?;
        let client = ClusterClientBuilder::new(infos)
            .connection_timeout(self.timeouts.connect)
            .response_timeout(self.timeouts.command)
            .retries(1)
            .min_retry_wait(10)
            .max_retry_wait(100)
            .build()
            .map_err(failed)?;
        let connection = client.get_connection().map_err(failed)?;
        connection
            .set_read_timeout(Some(self.timeouts.command))
            .and_then(|()| connection.set_write_timeout(Some(self.timeouts.command)))
            .map_err(failed)?;
        Ok(Link::Cluster(Box::new(connection)))
    }

    /// Puts every key under `prefix` instead of [`DEFAULT_PREFIX`] (several
    /// teams on one Redis, or tests). Braces are refused: they would make
    /// the prefix the hash tag and put every model in one slot.
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, PacingError> {
        if prefix.contains(['{', '}']) {
            return Err(PacingError::Unavailable {
                store: self.masked(),
                reason: format!("the key prefix `{prefix}` may not contain `{{` or `}}`"),
            });
        }
        prefix.clone_into(&mut self.prefix);
        Ok(self)
    }

    /// Makes the scripts take the caller's clock (`Context::now`) instead of
    /// the server's, so a test runs every store on one fake clock. Not for
    /// production: machines would no longer share one timeline.
    #[doc(hidden)]
    pub fn with_client_time(mut self) -> Self {
        self.client_time = true;
        self
    }

    /// The key prefix in use.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Up to `count` connections (1 to `MAX_CONNECTIONS`), each opened
    /// when first needed: a call takes a free one, or waits for one.
    pub fn with_connections(mut self, count: usize) -> Self {
        let count = count.clamp(1, MAX_CONNECTIONS);
        self.connections.resize_with(count, || Mutex::new(None));
        self
    }

    /// A free connection slot, else (all busy) the next one in turn, waited for.
    fn lock_connection(&self) -> MutexGuard<'_, Option<Link>> {
        let count = self.connections.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count;
        for offset in 0..count {
            match self.connections[(start + offset) % count].try_lock() {
                Ok(guard) => return guard,
                Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        lock(&self.connections[start])
    }

    fn lock_homes(&self) -> MutexGuard<'_, HashMap<String, String>> {
        self.homes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn unavailable(&self, failure: Failure) -> PacingError {
        let store = self.masked();
        let text = match failure {
            Failure::Connect(error) => error.to_string(),
            Failure::Command(error) => {
                command_error(self.url(), &error, self.timeouts.command).to_string()
            }
            Failure::Reply(message) => format!("unexpected reply from the server: {message}"),
        };
        // The connection layer's messages start with the store; say it once.
        let own = format!("store {}: ", self.url().masked());
        let reason = text.strip_prefix(&own).unwrap_or(&text).to_owned();
        PacingError::Unavailable { store, reason }
    }

    /// Runs `work` on the connection, opening it when there is none. A
    /// connection that broke (the server restarted, an idle connection was
    /// closed) is opened again once and `work` repeated; a timeout drops the
    /// connection (its reply may still come) and is not repeated.
    fn with_connection<T>(
        &self,
        mut work: impl FnMut(&mut Link) -> Result<T, Failure>,
    ) -> Result<T, PacingError> {
        let mut guard = self.lock_connection();
        for round in 0..2 {
            if guard.is_none() {
                match self.connect() {
                    Ok(link) => *guard = Some(link),
                    Err(error) => {
                        drop(guard);
                        return Err(self.unavailable(Failure::Connect(error)));
                    }
                }
            }
            let Some(link) = guard.as_mut() else {
                continue;
            };
            match work(link) {
                Ok(value) => return Ok(value),
                Err(Failure::Command(error)) => {
                    let broken = !error.is_timeout()
                        && (error.is_connection_dropped()
                            || error.is_io_error()
                            || error.is_unrecoverable_error());
                    if error.is_timeout() || broken {
                        *guard = None;
                    }
                    if broken && round == 0 {
                        continue;
                    }
                    drop(guard);
                    return Err(self.unavailable(Failure::Command(error)));
                }
                Err(other) => {
                    drop(guard);
                    return Err(self.unavailable(other));
                }
            }
        }
        Err(PacingError::Unavailable {
            store: self.masked(),
            reason: "the connection broke twice in a row".to_owned(),
        })
    }

    /// `<prefix>{<escaped provider::model>}`: every key of the model starts so.
    fn model_base(&self, key: &str) -> String {
        format!("{}{{{}}}", self.prefix, escape_key(key))
    }

    /// `<prefix>{<escaped provider>}:p`: the hold on every model of a
    /// provider. A provider name has no `::`, so its tag is no model's.
    fn provider_key(&self, provider: &str) -> String {
        format!("{}{{{}}}:p", self.prefix, escape_key(provider))
    }

    /// The provider hold standing in `key` at `now`, read by the client (a
    /// cluster's attempt script cannot reach the key's slot).
    fn read_provider_hold(&self, key: &str, now: u64) -> Result<Option<Hold>, PacingError> {
        let read: Vec<Option<String>> = self.with_connection(|link| {
            Ok(redis::cmd("HMGET")
                .arg(key)
                .arg("until")
                .arg("reason")
                .query(link.like())?)
        })?;
        let (Some(Some(until)), reason) = (read.first(), read.get(1)) else {
            return Ok(None);
        };
        let until =
            number(until, "provider hold end").map_err(|failure| self.unavailable(failure))?;
        Ok((until > now).then(|| Hold {
            kind: HoldKind::Quota,
            until,
            reason: reason.cloned().flatten().unwrap_or_default(),
        }))
    }

    fn index_key(&self, id: &str) -> String {
        format!("{}rsv:{id}", self.prefix)
    }

    /// The state key, provider and model a model base names.
    fn parse_base(&self, base: &str) -> Option<(String, String, String)> {
        let tag = base.strip_prefix(&self.prefix)?.strip_prefix('{')?;
        let key = unescape_key(tag.strip_suffix('}')?)?;
        let (provider, model) = key.split_once(KEY_SEPARATOR)?;
        Some((key.clone(), provider.to_owned(), model.to_owned()))
    }

    /// The keys and the common arguments of every model script.
    fn invocation<'a>(
        &self,
        script: &'a Script,
        cx: &Context<'_>,
        base: &str,
        profile: Option<&Profile>,
        provider: &str,
        model: &str,
    ) -> ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        for part in ["m", "e", "r", "l", "w"] {
            invocation.key(format!("{base}:{part}"));
        }
        let now = if self.client_time {
            (cx.now)().to_string()
        } else {
            String::new()
        };
        let span = WINDOW_MILLIS + cx.window_margin_millis.min(MAX_WINDOW_MARGIN_MILLIS);
        invocation.arg(now).arg(span);
        match profile {
            Some(profile) => {
                let limits = Limits::from(profile);
                invocation
                    .arg(format!("{:?}", profile.utilization_target()))
                    .arg(limits.rpm_limit)
                    .arg(limits.tpm_limit)
                    .arg(limits.effective_rpm_limit)
                    .arg(limits.effective_tpm_limit)
                    .arg(limits.base_concurrency_cap);
            }
            None => {
                invocation.arg("").arg(0).arg(0).arg(0).arg(0).arg(0);
            }
        }
        invocation
            .arg(provider)
            .arg(model)
            .arg(duration_millis(TTL_SLACK));
        invocation
    }

    fn span(cx: &Context<'_>) -> u64 {
        WINDOW_MILLIS + cx.window_margin_millis.min(MAX_WINDOW_MARGIN_MILLIS)
    }

    fn remember(&self, id: &str, base: &str) {
        let mut homes = self.lock_homes();
        if homes.len() >= MAX_CACHED_HOMES {
            homes.clear();
        }
        homes.insert(id.to_owned(), base.to_owned());
    }

    fn forget(&self, id: &str) {
        self.lock_homes().remove(id);
    }

    /// The dead among `owners` (id, owner JSON, process group JSON triples).
    fn dead_ids(cx: &Context<'_>, owners: &[String]) -> Result<Vec<String>, Failure> {
        let mut dead = Vec::new();
        for triple in owners.chunks(3) {
            let [id, owner, group] = triple else {
                return Err(Failure::Reply("owners not in threes".to_owned()));
            };
            let owner = parse_owner(owner, group)?;
            if (cx.is_dead)(&owner) {
                dead.push(id.clone());
            }
        }
        Ok(dead)
    }
}

/// Runs `invocation` of `script` and the side command `side` (ignoring its
/// reply) in one round trip, loading the script once when the server does
/// not know it (after a restart or `SCRIPT FLUSH`): one pipeline on a single
/// server; on a cluster, where they live in different slots, both commands
/// are sent (to their nodes) before either reply is read.
fn run_script(
    link: &mut Link,
    script: &Script,
    invocation: &ScriptInvocation<'_>,
    side: &redis::Cmd,
) -> RedisResult<Vec<String>> {
    let no_script = |error: &RedisError| {
        error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
    };
    match link {
        Link::Single(connection) => {
            let mut pipeline = redis::pipe();
            pipeline.add_command(side.clone()).ignore();
            pipeline.invoke_script(invocation);
            let connection = connection.raw();
            let (reply,) = match pipeline.query::<(Vec<String>,)>(connection) {
                Err(error) if no_script(&error) => {
                    script.load(connection)?;
                    pipeline.query(connection)?
                }
                other => other?,
            };
            Ok(reply)
        }
        Link::Cluster(connection) => {
            let mut pipeline = redis::cluster::cluster_pipe();
            pipeline.add_command(side.clone()).ignore();
            pipeline.invoke_script(invocation);
            let connection = &mut **connection;
            let (reply,) = match pipeline.query::<(Vec<String>,)>(connection) {
                // SCRIPT LOAD goes to every primary.
                Err(error) if no_script(&error) => {
                    script.load(connection)?;
                    pipeline.query(connection)?
                }
                other => other?,
            };
            Ok(reply)
        }
    }
}

fn number(text: &str, what: &str) -> Result<u64, Failure> {
    text.parse()
        .map_err(|_| Failure::Reply(format!("{what} `{text}` is not a number")))
}

fn float(text: &str, what: &str) -> Result<f64, Failure> {
    text.parse()
        .map_err(|_| Failure::Reply(format!("{what} `{text}` is not a number")))
}

fn parse_owner(owner: &str, group: &str) -> Result<Owner, Failure> {
    let mut owner: Owner =
        serde_json::from_str(owner).map_err(|error| Failure::Reply(format!("owner: {error}")))?;
    if !group.is_empty() {
        let group: ProcessGroup = serde_json::from_str(group)
            .map_err(|error| Failure::Reply(format!("process group: {error}")))?;
        owner.process_group = Some(group);
    }
    Ok(owner)
}

fn parse_reservation(text: &str, provider: &str, model: &str) -> Result<Reservation, Failure> {
    let stored: StoredReservation = serde_json::from_str(text)
        .map_err(|error| Failure::Reply(format!("reservation: {error}")))?;
    Ok(Reservation {
        id: stored.id,
        provider: provider.to_owned(),
        model: model.to_owned(),
        sequence: number(&stored.seq, "sequence")?,
        estimated_input_tokens: number(&stored.ein, "input tokens")?,
        max_output_tokens: number(&stored.mout, "output tokens")?,
        estimated_tokens: number(&stored.est, "estimate")?,
        acquired_at: number(&stored.at, "admission time")?,
        lease_expires_at: number(&stored.lease, "lease end")?,
        owner: parse_owner(&stored.owner, &stored.pg)?,
        bucket: stored.bk.filter(|bucket| !bucket.is_empty()),
    })
}

/// A model's status from the scripts' reply: the thirteen figures of the
/// view, the five of the hold and stated limits, the four of the unseen
/// use, the five of the budgets beyond RPM and TPM, the four of the unseen
/// input and output tokens, then the reservations.
fn parse_status(reply: &[String]) -> Result<ModelStatus, Failure> {
    if reply.len() < 31 {
        return Err(Failure::Reply(format!(
            "status answered {} values",
            reply.len()
        )));
    }
    let snapshot = parse_view(&reply[..13])?;
    let [kind, until, why, rpm, tpm] = &reply[13..18] else {
        unreachable!("a slice of five");
    };
    let hold = match kind.as_str() {
        "" => None,
        other => Some(Hold {
            kind: match other {
                "backoff" => HoldKind::Backoff,
                "exhausted" => HoldKind::Exhausted,
                "quota" => HoldKind::Quota,
                unknown => return Err(Failure::Reply(format!("hold kind `{unknown}`"))),
            },
            until: number(until, "hold end")?,
            reason: why.clone(),
        }),
    };
    let stated_limit = |text: &str, what: &str| -> Result<Option<u64>, Failure> {
        Ok(Some(number(text, what)?).filter(|&limit| limit > 0))
    };
    let [itpm, otpm, rpd, tpd, uses] = &reply[22..27] else {
        unreachable!("a slice of five");
    };
    let stated = StatedLimits {
        requests_per_minute: stated_limit(rpm, "stated rpm")?,
        tokens_per_minute: stated_limit(tpm, "stated tpm")?,
        input_tokens_per_minute: stated_limit(itpm, "stated itpm")?,
        output_tokens_per_minute: stated_limit(otpm, "stated otpm")?,
        requests_per_day: stated_limit(rpd, "stated rpd")?,
        tokens_per_day: stated_limit(tpd, "stated tpd")?,
    };
    let [requests, requests_until, tokens, tokens_until] = &reply[18..22] else {
        unreachable!("a slice of four");
    };
    let [input_tokens, input_tokens_until, output_tokens, output_tokens_until] = &reply[27..31]
    else {
        unreachable!("a slice of four");
    };
    let unseen = UnseenUse {
        requests: number(requests, "unseen requests")?,
        requests_until: number(requests_until, "unseen requests' end")?,
        tokens: number(tokens, "unseen tokens")?,
        tokens_until: number(tokens_until, "unseen tokens' end")?,
        input_tokens: number(input_tokens, "unseen input tokens")?,
        input_tokens_until: number(input_tokens_until, "unseen input tokens' end")?,
        output_tokens: number(output_tokens, "unseen output tokens")?,
        output_tokens_until: number(output_tokens_until, "unseen output tokens' end")?,
    };
    let budgets = parse_budget_uses(uses)?;
    let mut reservations = reply[31..]
        .iter()
        .map(|record| parse_reservation(record, &snapshot.provider, &snapshot.model))
        .collect::<Result<Vec<_>, _>>()?;
    reservations.sort_by(|one, other| one.id.cmp(&other.id));
    Ok(ModelStatus {
        snapshot,
        reservations,
        hold,
        stated,
        budgets,
        unseen,
    })
}

/// The last ARGV of every model script: the profile's limits beyond RPM and
/// TPM, `itpm,otpm,rpd,tpd,period start,period end` (empty where unset; the
/// period of a fixed daily reset holding `now`, empty for a rolling day).
fn budgets_pack(profile: Option<&Profile>, now: u64) -> String {
    let Some(profile) = profile else {
        return String::new();
    };
    let extended = profile.extended();
    let text = |limit: Option<u64>| limit.map(|limit| limit.to_string()).unwrap_or_default();
    let (start, end) = extended
        .daily_reset
        .period(now)
        .map_or((String::new(), String::new()), |(start, end)| {
            (start.to_string(), end.to_string())
        });
    format!(
        "{},{},{},{},{start},{end}",
        text(extended.itpm),
        text(extended.otpm),
        text(extended.rpd),
        text(extended.tpd)
    )
}

/// A budget by the name the scripts use (its serde name).
fn budget_named(name: &str) -> Result<Budget, Failure> {
    Budget::ALL
        .into_iter()
        .find(|budget| {
            serde_json::to_value(budget)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                == Some(name.to_owned())
        })
        .ok_or_else(|| Failure::Reply(format!("budget `{name}`")))
}

/// `budget:profile limit:limit:used:frees at` entries joined by `,`.
fn parse_budget_uses(text: &str) -> Result<Vec<BudgetUse>, Failure> {
    text.split(',')
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let parts: Vec<&str> = entry.split(':').collect();
            let [budget, own, limit, used, frees] = parts.as_slice() else {
                return Err(Failure::Reply(format!("budget use `{entry}`")));
            };
            let optional = |text: &str, what: &str| -> Result<Option<u64>, Failure> {
                if text.is_empty() {
                    Ok(None)
                } else {
                    number(text, what).map(Some)
                }
            };
            Ok(BudgetUse {
                budget: budget_named(budget)?,
                limit: optional(own, "budget's profile limit")?,
                effective_limit: number(limit, "budget's limit")?,
                used: number(used, "budget's use")?,
                frees_at: optional(frees, "budget's end")?,
            })
        })
        .collect()
}

/// `ModelState::view` from the scripts' thirteen figures.
fn parse_view(parts: &[String]) -> Result<RateLimitSnapshot, Failure> {
    let [provider, model, rpm, tpm, erpm, etpm, requests, tokens, mar, mat, base, cap, in_flight] =
        parts
    else {
        return Err(Failure::Reply(format!("{} figures, not 13", parts.len())));
    };
    let effective_rpm_limit = number(erpm, "effective rpm")?;
    let effective_tpm_limit = number(etpm, "effective tpm")?;
    let rolling_request_count = number(requests, "requests")?;
    let rolling_token_count = number(tokens, "tokens")?;
    let small = |text: &str, what: &str| -> Result<u32, Failure> {
        u32::try_from(number(text, what)?)
            .map_err(|_| Failure::Reply(format!("{what} `{text}` is out of range")))
    };
    Ok(RateLimitSnapshot {
        provider: provider.clone(),
        model: model.clone(),
        rpm_limit: number(rpm, "rpm")?,
        tpm_limit: number(tpm, "tpm")?,
        effective_rpm_limit,
        effective_tpm_limit,
        rolling_request_count,
        rolling_token_count,
        moving_average_requests: float(mar, "moving average")?,
        moving_average_tokens: float(mat, "moving average")?,
        request_utilization: rolling_request_count as f64 / effective_rpm_limit.max(1) as f64,
        token_utilization: rolling_token_count as f64 / effective_tpm_limit.max(1) as f64,
        base_concurrency_cap: small(base, "base cap")?,
        current_concurrency_cap: small(cap, "current cap")?,
        in_flight: number(in_flight, "in flight")?,
    })
}

fn reason(text: &str) -> Result<WaitReason, Failure> {
    Ok(match text {
        "requests" => WaitReason::Requests,
        "tokens" => WaitReason::Tokens,
        "concurrency" => WaitReason::Concurrency,
        "queue" => WaitReason::Queue,
        "hold" => WaitReason::Hold,
        "input_tokens" => WaitReason::InputTokens,
        "output_tokens" => WaitReason::OutputTokens,
        "daily_requests" => WaitReason::DailyRequests,
        "daily_tokens" => WaitReason::DailyTokens,
        "bucket" => WaitReason::Bucket,
        other => return Err(Failure::Reply(format!("wait reason `{other}`"))),
    })
}

fn owner_json(owner: &Owner) -> (String, String) {
    let mut bare = owner.clone();
    let group = bare.process_group.take();
    let owner = serde_json::to_string(&bare).unwrap_or_default();
    let group = group
        .map(|group| serde_json::to_string(&group).unwrap_or_default())
        .unwrap_or_default();
    (owner, group)
}

impl Backend for RedisStore {
    fn describe(&self) -> String {
        format!("the Redis store {}", self.masked())
    }

    fn attempt(&self, cx: &Context<'_>, spec: &AttemptSpec<'_>) -> Result<Attempt, PacingError> {
        let label = format!("{}/{}", spec.provider, spec.model);
        let request = spec.request;
        let estimate = request.estimated_tokens();
        // The refusals that depend on the request and the profile alone, in
        // the order the scheduler makes them; no state changes for them.
        for (field, value) in [
            ("estimated input tokens", request.estimated_input_tokens),
            ("max output tokens", request.max_output_tokens),
            ("estimated tokens", estimate),
        ] {
            if value > MAX_COUNT {
                return Ok(Attempt::Failed(SchedulerError::TokensOutOfRange {
                    label,
                    field,
                    value,
                }));
            }
        }
        let effective_tpm_limit = spec.profile.effective_tpm_limit();
        if estimate > effective_tpm_limit {
            return Ok(Attempt::Failed(SchedulerError::TooLarge {
                label,
                estimate,
                effective_tpm_limit,
            }));
        }
        let bucket = match &request.bucket {
            Some(bucket) => match bucket_cap(spec.profile, bucket) {
                Ok(cap) => Some((normalize_bucket(bucket), cap)),
                Err(error) => return Ok(Attempt::Failed(error)),
            },
            None => None,
        };
        // Every bucket's cap, for the queue to tell which waiters ahead a
        // full bucket holds back.
        let bucket_caps = serde_json::Value::Object(
            spec.profile
                .concurrency_by_bucket()
                .into_iter()
                .map(|(name, cap)| (normalize_bucket(&name), cap.into()))
                .collect(),
        )
        .to_string();
        let base = self.model_base(spec.key);
        let (owner, group) = owner_json(&request.owner);
        let (waiter, _) = owner_json(spec.waiter);
        let lease = duration_millis(request.lease);
        let index_ttl = lease
            .saturating_add(Self::span(cx))
            .saturating_add(duration_millis(TTL_SLACK));
        let new_ticket = format!(
            "{}{:016x}",
            crate::rate_limits::scheduler::TICKET_PREFIX,
            fastrand::u64(..)
        );
        let provider_key = self.provider_key(spec.provider);
        if self.cluster {
            if let Some(hold) = self.read_provider_hold(&provider_key, (cx.now)())? {
                // A ticket this waiter holds lapses by itself within its grace.
                return Ok(Attempt::Failed(SchedulerError::ProviderHeld {
                    provider: spec.provider.to_owned(),
                    until: hold.until,
                    reason: hold.reason,
                }));
            }
        }
        let mut dead: Vec<String> = Vec::new();
        let mut check = true;
        // At most two passes: the second after the client looked for dead
        // owners among those the first handed back.
        for _ in 0..2 {
            let mut invocation = self.invocation(
                &ATTEMPT,
                cx,
                &base,
                Some(spec.profile),
                spec.provider,
                spec.model,
            );
            if !self.cluster {
                invocation.key(&provider_key);
            }
            invocation
                .arg(spec.reservation_id)
                .arg(spec.ticket.unwrap_or(""))
                .arg(&new_ticket)
                .arg(&waiter)
                .arg(request.estimated_input_tokens)
                .arg(request.max_output_tokens)
                .arg(estimate)
                .arg(&owner)
                .arg(&group)
                .arg(lease)
                .arg(
                    spec.remaining
                        .map(duration_millis)
                        .map_or_else(String::new, |ms| ms.to_string()),
                )
                .arg(duration_millis(spec.poll_interval))
                .arg(duration_millis(spec.ticket_grace))
                .arg(if check { "1" } else { "0" })
                .arg(dead.len());
            for id in &dead {
                invocation.arg(id);
            }
            match &bucket {
                Some((name, cap)) => invocation.arg(name).arg(*cap),
                None => invocation.arg("").arg(0),
            };
            invocation.arg(&bucket_caps);
            invocation.arg(budgets_pack(Some(spec.profile), (cx.now)()));
            let mut index = redis::cmd("SET");
            index
                .arg(self.index_key(spec.reservation_id))
                .arg(&base)
                .arg("PX")
                .arg(index_ttl);
            let reply: Vec<String> =
                self.with_connection(|link| Ok(run_script(link, &ATTEMPT, &invocation, &index)?))?;
            let parsed = (|| -> Result<Option<Attempt>, Failure> {
                let Some((tag, rest)) = reply.split_first() else {
                    return Err(Failure::Reply("an empty attempt reply".to_owned()));
                };
                Ok(Some(match (tag.as_str(), rest) {
                    ("granted", [record]) => {
                        Attempt::Granted(parse_reservation(record, spec.provider, spec.model)?)
                    }
                    ("held", [until, why]) => Attempt::Failed(SchedulerError::Held {
                        label: format!("{}/{}", spec.provider, spec.model),
                        provider: spec.provider.to_owned(),
                        model: spec.model.to_owned(),
                        until: number(until, "hold end")?,
                        reason: why.clone(),
                    }),
                    ("provider_held", [until, why]) => {
                        Attempt::Failed(SchedulerError::ProviderHeld {
                            provider: spec.provider.to_owned(),
                            until: number(until, "provider hold end")?,
                            reason: why.clone(),
                        })
                    }
                    ("owners", owners) => {
                        dead = Self::dead_ids(cx, owners)?;
                        return Ok(None);
                    }
                    ("over", [budget, amount, limit]) => {
                        Attempt::Failed(SchedulerError::OverBudget {
                            label: format!("{}/{}", spec.provider, spec.model),
                            budget: budget_named(budget)?,
                            amount: number(amount, "amount")?,
                            limit: number(limit, "limit")?,
                        })
                    }
                    ("giveup", [why, needed]) => Attempt::GiveUp {
                        reason: reason(why)?,
                        needed: Duration::from_millis(number(needed, "wait")?),
                    },
                    ("sleep", [why, retry_after, sleep, ticket]) => Attempt::Sleep {
                        reason: reason(why)?,
                        retry_after: Duration::from_millis(number(retry_after, "wait")?),
                        sleep: Duration::from_millis(number(sleep, "sleep")?),
                        ticket: ticket.clone(),
                    },
                    (other, _) => {
                        return Err(Failure::Reply(format!(
                            "attempt answered `{other}` with {} values",
                            rest.len()
                        )))
                    }
                }))
            })()
            .map_err(|failure| self.unavailable(failure))?;
            match parsed {
                Some(attempt) => {
                    if let Attempt::Granted(reservation) = &attempt {
                        self.remember(&reservation.id, &base);
                    }
                    return Ok(attempt);
                }
                None => check = false,
            }
        }
        Err(self.unavailable(Failure::Reply(
            "the attempt asked for its owners twice".to_owned(),
        )))
    }

    fn settle(
        &self,
        cx: &Context<'_>,
        id: &str,
        settlement: &Settlement,
    ) -> Result<Settled, PacingError> {
        let unknown =
            || PacingError::from(SchedulerError::UnknownReservation { id: id.to_owned() });
        let cached = self.lock_homes().get(id).cloned();
        let base = match cached {
            Some(base) => base,
            None => {
                let index = self.index_key(id);
                let found: Option<String> = self.with_connection(|link| {
                    Ok(redis::cmd("GET").arg(&index).query(link.like())?)
                })?;
                found.ok_or_else(unknown)?
            }
        };
        let Some((_, provider, model)) = self.parse_base(&base) else {
            return Err(unknown());
        };
        let profile = cx
            .catalog
            .resolve(&provider, &model)
            .map(|entry| &entry.profile);
        let mut invocation = self.invocation(&SETTLE, cx, &base, profile, &provider, &model);
        invocation.arg(id);
        let mut delay_seconds = None;
        match settlement {
            Settlement::Success {
                input_tokens,
                output_tokens,
            } => {
                invocation
                    .arg("success")
                    .arg(input_tokens.saturating_add(*output_tokens).min(MAX_COUNT))
                    .arg((*input_tokens).min(MAX_COUNT))
                    .arg((*output_tokens).min(MAX_COUNT));
            }
            Settlement::RateLimit {
                retry_after_seconds,
                attempt,
                jitter,
            } => {
                invocation.arg("rate_limit");
                delay_seconds = Some(retry_delay(*retry_after_seconds, *attempt, *jitter));
            }
            Settlement::Failure { tokens } => {
                invocation.arg("failure").arg((*tokens).min(MAX_COUNT));
            }
            Settlement::Release => {
                invocation.arg("release");
            }
            Settlement::Renew {
                lease,
                process_group,
            } => {
                let group = process_group
                    .map(|group| serde_json::to_string(&group).unwrap_or_default())
                    .unwrap_or_default();
                invocation
                    .arg("renew")
                    .arg(duration_millis(*lease))
                    .arg(group);
            }
        }
        invocation.arg(budgets_pack(profile, (cx.now)()));
        let renew = matches!(settlement, Settlement::Renew { .. });
        let index = if let Settlement::Renew { lease, .. } = settlement {
            let ttl = duration_millis(*lease)
                .saturating_add(Self::span(cx))
                .saturating_add(duration_millis(TTL_SLACK));
            let mut extend = redis::cmd("PEXPIRE");
            extend.arg(self.index_key(id)).arg(ttl);
            extend
        } else {
            let mut unlink = redis::cmd("UNLINK");
            unlink.arg(self.index_key(id));
            unlink
        };
        let reply: Vec<String> =
            self.with_connection(|link| Ok(run_script(link, &SETTLE, &invocation, &index)?))?;
        if !renew {
            self.forget(id);
        }
        match reply.split_first() {
            Some((tag, _)) if tag == "unknown" => {
                self.forget(id);
                Err(unknown())
            }
            Some((tag, rest)) if tag == "settled" && !rest.is_empty() => {
                let reservation = parse_reservation(&rest[0], &provider, &model)
                    .map_err(|failure| self.unavailable(failure))?;
                let snapshot =
                    parse_view(&rest[1..]).map_err(|failure| self.unavailable(failure))?;
                Ok(Settled {
                    reservation,
                    snapshot,
                    delay_seconds,
                })
            }
            _ => Err(self.unavailable(Failure::Reply(format!(
                "settle answered {} values",
                reply.len()
            )))),
        }
    }

    fn record_lost(
        &self,
        cx: &Context<'_>,
        reservation: &Reservation,
        tokens: u64,
        rate_limited: bool,
    ) -> Result<bool, PacingError> {
        let (key, provider, model) = model_key(&reservation.provider, &reservation.model)
            .ok_or_else(|| SchedulerError::NoProfile {
                label: format!("{}/{}", reservation.provider, reservation.model),
            })?;
        let profile = cx
            .catalog
            .resolve(&provider, &model)
            .map(|entry| &entry.profile);
        let base = self.model_base(&key);
        let mut invocation = self.invocation(&LOST, cx, &base, profile, &provider, &model);
        invocation
            .arg(reservation.sequence)
            .arg(reservation.acquired_at)
            .arg(tokens.min(MAX_COUNT))
            .arg(if rate_limited { "1" } else { "0" })
            .arg(reservation.estimated_input_tokens.min(MAX_COUNT))
            .arg(budgets_pack(profile, (cx.now)()));
        let counted: i64 = self.with_connection(|link| Ok(invocation.invoke(link.like())?))?;
        Ok(counted == 1)
    }

    fn status(
        &self,
        cx: &Context<'_>,
        wanted: &[Wanted<'_>],
    ) -> Result<Vec<ModelStatus>, PacingError> {
        let pattern = format!("{}{{*}}:m", glob_escape(&self.prefix));
        let mut bases: Vec<String> = self
            .scan(&pattern)?
            .into_iter()
            .filter_map(|key| key.strip_suffix(":m").map(str::to_owned))
            .collect();
        let mut models: Vec<StatusTarget<'_>> = Vec::new();
        for one in wanted {
            let base = self.model_base(one.key);
            bases.retain(|found| *found != base);
            models.push(StatusTarget {
                key: one.key.to_owned(),
                base,
                provider: one.provider.to_owned(),
                model: one.model.to_owned(),
                profile: Some(one.profile),
                create: true,
            });
        }
        for base in bases {
            if let Some((key, provider, model)) = self.parse_base(&base) {
                let profile = cx
                    .catalog
                    .resolve(&provider, &model)
                    .map(|entry| &entry.profile);
                models.push(StatusTarget {
                    key,
                    base,
                    provider,
                    model,
                    profile,
                    create: false,
                });
            }
        }
        models.sort_by(|one, other| one.key.cmp(&other.key));
        models.dedup_by(|one, other| one.key == other.key);
        let mut statuses = Vec::with_capacity(models.len());
        for target in &models {
            if let Some(status) = self.model_status(cx, target)? {
                statuses.push(status);
            }
        }
        Ok(statuses)
    }

    fn advise(
        &self,
        cx: &Context<'_>,
        target: &Wanted<'_>,
        advice: &Advice,
    ) -> Result<ModelStatus, PacingError> {
        let base = self.model_base(target.key);
        let mut invocation = self.invocation(
            &ADVISE,
            cx,
            &base,
            Some(target.profile),
            target.provider,
            target.model,
        );
        let stated = |limit: Option<u64>| limit.map(|limit| limit.to_string()).unwrap_or_default();
        invocation
            .arg(if advice.clear_hold { "1" } else { "" })
            .arg(stated(advice.stated.requests_per_minute))
            .arg(stated(advice.stated.tokens_per_minute));
        match &advice.hold {
            Some(hold) => invocation
                .arg(hold.kind.as_str())
                .arg(hold.until)
                .arg(&hold.reason),
            None => invocation.arg("").arg(0).arg(""),
        };
        invocation
            .arg(stated(advice.stated.input_tokens_per_minute))
            .arg(stated(advice.stated.output_tokens_per_minute))
            .arg(stated(advice.stated.requests_per_day))
            .arg(stated(advice.stated.tokens_per_day));
        for counted in [
            advice.provider_use.requests,
            advice.provider_use.tokens,
            advice.provider_use.input_tokens,
            advice.provider_use.output_tokens,
        ] {
            match counted {
                Some(counted) => invocation
                    .arg(counted.used)
                    .arg(counted.resets_at.unwrap_or_default()),
                None => invocation.arg("").arg(0),
            };
        }
        invocation.arg(budgets_pack(Some(target.profile), (cx.now)()));
        let reply: Vec<String> =
            self.with_connection(|link| Ok(invocation.invoke(link.like())?))?;
        parse_status(&reply).map_err(|failure| self.unavailable(failure))
    }

    fn hold_provider(
        &self,
        cx: &Context<'_>,
        provider: &str,
        hold: Option<&Hold>,
        clear: bool,
    ) -> Result<Option<Hold>, PacingError> {
        let mut invocation = PROVIDER_HOLD.prepare_invoke();
        invocation.key(self.provider_key(provider));
        let now = if self.client_time {
            (cx.now)().to_string()
        } else {
            String::new()
        };
        invocation
            .arg(now)
            .arg(if clear { "1" } else { "" })
            .arg(hold.map_or(0, |hold| hold.until))
            .arg(hold.map_or("", |hold| hold.reason.as_str()))
            .arg(duration_millis(TTL_SLACK));
        let reply: Vec<String> =
            self.with_connection(|link| Ok(invocation.invoke(link.like())?))?;
        match reply.as_slice() {
            [] => Ok(None),
            [until, reason] => Ok(Some(Hold {
                kind: HoldKind::Quota,
                until: number(until, "provider hold end")
                    .map_err(|failure| self.unavailable(failure))?,
                reason: reason.clone(),
            })),
            other => Err(self.unavailable(Failure::Reply(format!(
                "provider hold answered {} values",
                other.len()
            )))),
        }
    }

    fn provider_holds(&self, cx: &Context<'_>) -> Result<Vec<ProviderHold>, PacingError> {
        let pattern = format!("{}{{*}}:p", glob_escape(&self.prefix));
        let now = (cx.now)();
        let mut holds = Vec::new();
        for key in self.scan(&pattern)? {
            let provider = key
                .strip_prefix(&self.prefix)
                .and_then(|rest| rest.strip_prefix('{'))
                .and_then(|rest| rest.strip_suffix("}:p"))
                .and_then(unescape_key);
            let Some(provider) = provider else {
                continue;
            };
            if let Some(hold) = self.read_provider_hold(&key, now)? {
                holds.push(ProviderHold { provider, hold });
            }
        }
        holds.sort_by(|one, other| one.provider.cmp(&other.provider));
        Ok(holds)
    }

    /// Deletes every key under the prefix (SCAN and UNLINK in batches). A
    /// `FLUSHALL` on the server does the same and more: it is a budget reset.
    fn reset(&self) -> Result<bool, PacingError> {
        let pattern = format!("{}*", glob_escape(&self.prefix));
        let keys = self.scan(&pattern)?;
        for batch in keys.chunks(500) {
            self.with_connection(|link| match link {
                Link::Single(connection) => {
                    let mut pipeline = redis::pipe();
                    for key in batch {
                        pipeline.cmd("UNLINK").arg(key).ignore();
                    }
                    Ok(pipeline.query::<()>(connection.raw())?)
                }
                // Keys of several slots: one command each.
                Link::Cluster(connection) => {
                    for key in batch {
                        redis::cmd("UNLINK").arg(key).query::<()>(connection)?;
                    }
                    Ok(())
                }
            })?;
        }
        self.lock_homes().clear();
        Ok(!keys.is_empty())
    }
}

/// A model `status` reports on.
struct StatusTarget<'a> {
    key: String,
    base: String,
    provider: String,
    model: String,
    profile: Option<&'a Profile>,
    /// A wanted model: reported (with zeros) even without state.
    create: bool,
}

impl RedisStore {
    /// One model's status: its owners first, for the dead-owner test, then
    /// the status script with the dead ones' ids. `None` when it has no state.
    fn model_status(
        &self,
        cx: &Context<'_>,
        target: &StatusTarget<'_>,
    ) -> Result<Option<ModelStatus>, PacingError> {
        let StatusTarget {
            base,
            provider,
            model,
            profile,
            create,
            ..
        } = target;
        let owners = self.invocation(&OWNERS, cx, base, *profile, provider, model);
        let owners: Vec<String> = self.with_connection(|link| Ok(owners.invoke(link.like())?))?;
        let dead = Self::dead_ids(cx, &owners).map_err(|failure| self.unavailable(failure))?;
        let mut invocation = self.invocation(&STATUS, cx, base, *profile, provider, model);
        invocation
            .arg(if *create { "1" } else { "0" })
            .arg(dead.len());
        for id in &dead {
            invocation.arg(id);
        }
        invocation.arg(budgets_pack(*profile, (cx.now)()));
        let reply: Vec<String> =
            self.with_connection(|link| Ok(invocation.invoke(link.like())?))?;
        if reply.is_empty() {
            return Ok(None);
        }
        parse_status(&reply)
            .map(Some)
            .map_err(|failure| self.unavailable(failure))
    }

    /// Every key matching `pattern`, by SCAN (on a cluster, on every
    /// primary), bounded by [`MAX_SCAN_CALLS`].
    fn scan(&self, pattern: &str) -> Result<Vec<String>, PacingError> {
        let primaries = self.with_connection(|link| match link {
            Link::Single(_) => Ok(vec![None]),
            Link::Cluster(connection) => Ok(primaries(connection)?.into_iter().map(Some).collect()),
        })?;
        let mut keys = Vec::new();
        let mut calls = 0;
        for node in primaries {
            let mut cursor: u64 = 0;
            loop {
                calls += 1;
                if calls > MAX_SCAN_CALLS {
                    return Err(PacingError::Unavailable {
                        store: self.masked(),
                        reason: format!("more keys under `{}` than a scan walks", self.prefix),
                    });
                }
                let mut command = redis::cmd("SCAN");
                command
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000);
                let (next, batch): (u64, Vec<String>) = self.with_connection(|link| {
                    Ok(match (link, &node) {
                        (Link::Cluster(connection), Some((host, port))) => {
                            let routing =
                                RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                                    host: host.clone(),
                                    port: *port,
                                });
                            redis::from_redis_value(connection.route_command(&command, routing)?)
                                .map_err(|error| Failure::Reply(format!("SCAN: {error}")))?
                        }
                        (link, _) => command.query(link.like())?,
                    })
                })?;
                keys.extend(batch);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}

/// The addresses of a cluster's primaries, from `CLUSTER NODES`.
fn primaries(connection: &mut ClusterConnection) -> RedisResult<Vec<(String, u16)>> {
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(connection)?;
    let mut found = Vec::new();
    for line in nodes.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(address), Some(flags)) = (fields.get(1), fields.get(2)) else {
            continue;
        };
        if !flags.split(',').any(|flag| flag == "master") || flags.contains("fail") {
            continue;
        }
        // `host:port@bus[,hostname]`
        let address = address.split(['@', ',']).next().unwrap_or_default();
        if let Some((host, port)) = address.rsplit_once(':') {
            if let Ok(port) = port.parse() {
                found.push((host.to_owned(), port));
            }
        }
    }
    Ok(found)
}

/// `text` with the glob characters of SCAN MATCH escaped.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if matches!(character, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}
