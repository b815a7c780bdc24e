//! The scenarios of issue 10, each reported as a ratio to its ceiling.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use tonic::Code;

use super::{
    baseline::HashPath,
    cpu,
    load::{self, drive, drive_plan, Op, Plan, Stats},
    seed::{bearer, login as log_in, Bench},
    Options, Outcome, Report,
};
use gardien::proto::{
    accountsecurity::v1::{
        IntrospectSessionRequest, LiftSuspensionRequest, ListSecurityEventsRequest,
        RequestPasswordResetRequest, SuspendPasswordRequest, SuspensionReason,
    },
    support::v1::{
        support_service_client::SupportServiceClient, CreateTicketRequest, TicketCategory,
    },
};

fn outcome(
    scenario: &str,
    ratio: f64,
    target: &str,
    met: bool,
    unexpected: u64,
    runs: Vec<(&str, Stats)>,
) -> Outcome {
    Outcome {
        scenario: scenario.into(),
        ratio,
        target: target.into(),
        met: met && unexpected == 0,
        unexpected_errors: unexpected,
        runs: runs.into_iter().map(|(n, s)| (n.to_string(), s)).collect(),
        notes: Vec::new(),
    }
}

fn login_op(bench: &Bench) -> Op {
    let accounts = bench.accounts.clone();
    let clients: Vec<_> = (0..bench.channels.len()).map(|i| bench.client(i)).collect();
    load::op(move |worker, n| {
        let account = &accounts[(worker + n as usize) % accounts.len()];
        let mut client = clients[worker % clients.len()].clone();
        let (user, password) = (account.login.clone(), account.password.clone());
        async move { log_in(&mut client, &user, &password).await.map(|_| ()) }
    })
}

fn introspect_op(bench: &Bench) -> Op {
    let accounts = bench.accounts.clone();
    let clients: Vec<_> = (0..bench.channels.len()).map(|i| bench.client(i)).collect();
    let service = bench.service_token.clone();
    load::op(move |worker, n| {
        let token = accounts[(worker + n as usize) % accounts.len()]
            .session
            .clone();
        let mut client = clients[worker % clients.len()].clone();
        let request = bearer(
            IntrospectSessionRequest {
                session_token: token,
            },
            &service,
        );
        async move {
            let response = client
                .introspect_session(request)
                .await
                .map_err(|s| s.code())?;
            if response.into_inner().active {
                Ok(())
            } else {
                Err(Code::Unauthenticated)
            }
        }
    })
}

/// Valid logins at saturation ÷ the argon2 ceiling. The ceiling is timed
/// before, between and after the login runs and pooled: on a shared machine
/// the speed of a hash drifts by several percent within a minute, and a
/// ceiling timed once, before, would put that drift into the ratio. The
/// service's own verify is timed at the same points, and the CPU each login
/// run got is split between the hashing threads and the rest, for the notes.
pub async fn login(
    bench: &Bench,
    options: &Options,
    report: &mut Report,
) -> anyhow::Result<Outcome> {
    const ROUNDS: u32 = 4;
    let window = options.duration / ROUNDS;
    let timing = window.clamp(Duration::from_secs(1), Duration::from_secs(3));
    let mut ceilings = Vec::new();
    let mut service = Vec::new();
    let mut logins = load::Tally::new();
    let mut cpu = Vec::new();
    for round in 0..=ROUNDS {
        ceilings.push(report.time_argon2(bench, timing, HashPath::Plain).await?);
        service.push(
            report
                .time_argon2(bench, timing / 2, HashPath::Service)
                .await?,
        );
        if round == ROUNDS {
            break;
        }
        let before = cpu::Snapshot::take();
        let run = load::run(
            Plan::for_duration(window),
            options.concurrency,
            login_op(bench),
        )
        .await;
        if let (Some(before), Some(after)) = (before, cpu::Snapshot::take()) {
            cpu.push(after.since(&before));
        }
        logins.add(&run);
    }
    let stats = logins.stats();
    let logins_per_second = stats.per_second;
    let pool = |timings: &[super::baseline::Argon2Ceiling]| {
        timings
            .iter()
            .skip(1)
            .fold(timings[0].clone(), |pooled, c| pooled.pooled_with(c))
    };
    let (pooled, own) = (pool(&ceilings), pool(&service));
    let ratio = logins_per_second / pooled.per_second.max(f64::MIN_POSITIVE);
    let unexpected = stats.unexpected_errors(&[]);
    report.argon2 = Some(pooled.clone());
    let mut result = outcome(
        "login",
        ratio,
        ">= 0.90 x argon2 ceiling",
        ratio >= 0.90,
        unexpected,
        vec![("login", stats)],
    );
    let each: Vec<_> = ceilings
        .iter()
        .map(|c| format!("{:.1}", c.per_second))
        .collect();
    result.notes.push(format!(
        "{} login runs of {:.1} s; argon2 ceiling {:.1}/s pooled from {} timings between them: {}",
        ROUNDS,
        window.as_secs_f64(),
        pooled.per_second,
        ceilings.len(),
        each.join(", ")
    ));
    result.notes.push(format!(
        "the service's own verify (kept buffer): {:.1}/s on every core, {:+.1}% against the ceiling; logins against it: {:.3}",
        own.per_second,
        (own.per_second / pooled.per_second.max(f64::MIN_POSITIVE) - 1.0) * 100.0,
        logins_per_second / own.per_second.max(f64::MIN_POSITIVE)
    ));
    if let Some(cpu) = cpu::Split::mean(&cpu) {
        result.notes.push(format!(
            "CPU during the login runs, in cores: hashing threads {:.2}, rest of the process {:.2}, outside it {:.2}, idle {:.2}; \
             {:.2} ms of CPU per login besides its hash",
            cpu.hashing,
            cpu.rest_of_process,
            cpu.outside,
            cpu.idle,
            (cpu.rest_of_process + cpu.outside) * 1000.0 / logins_per_second.max(f64::MIN_POSITIVE)
        ));
    }
    Ok(result)
}

pub async fn introspect(
    bench: &Bench,
    options: &Options,
    report: &mut Report,
) -> anyhow::Result<Outcome> {
    let echo = report.echo(options).await?;
    let stats = drive(options.duration, options.concurrency, introspect_op(bench)).await;
    let ratio = stats.per_second / echo.max(f64::MIN_POSITIVE);
    let unexpected = stats.unexpected_errors(&[]);
    Ok(outcome(
        "introspect",
        ratio,
        ">= 0.50 x echo",
        ratio >= 0.50,
        unexpected,
        vec![("introspect", stats)],
    ))
}

/// A light introspection load alone, then under a saturating login flood.
pub async fn isolation(bench: &Bench, options: &Options) -> anyhow::Result<Outcome> {
    let light = 4;
    let alone = drive(options.duration, light, introspect_op(bench)).await;
    let flood = tokio::spawn(drive(
        options.duration + Duration::from_millis(500),
        options.concurrency,
        login_op(bench),
    ));
    tokio::time::sleep(Duration::from_millis(250)).await;
    let under = drive(options.duration, light, introspect_op(bench)).await;
    let flood = flood.await?;
    let ratio = under.p99_us as f64 / alone.p99_us.max(1) as f64;
    let unexpected =
        alone.unexpected_errors(&[]) + under.unexpected_errors(&[]) + flood.unexpected_errors(&[]);
    Ok(outcome(
        "isolation",
        ratio,
        "p99 under flood <= 3 x p99 alone",
        ratio <= 3.0,
        unexpected,
        vec![
            ("introspect alone", alone),
            ("introspect under flood", under),
            ("login flood", flood),
        ],
    ))
}

/// Anonymous reset and login-reminder requests for known accounts, 80 a
/// second (issue 20: a burst of 80 once held the whole connection pool),
/// while a light `Login` load goes on: its p99 must stay under 500 ms, and
/// every request answered OK must be worked off afterwards.
pub async fn reset_burst(bench: &Bench, options: &Options) -> anyhow::Result<Outcome> {
    use gardien::proto::accountsecurity::v1::RecoverLoginRequest;
    const BOUND: Duration = Duration::from_millis(500);
    let light = 4;
    let alone = drive(options.duration, light, login_op(bench)).await;
    let accounts = bench.accounts.clone();
    let clients: Vec<_> = (0..bench.channels.len()).map(|i| bench.client(i)).collect();
    let burst_op = load::op(move |worker, n| {
        let account = &accounts[(worker + n as usize) % accounts.len()];
        let mut client = clients[worker % clients.len()].clone();
        let login = account.login.clone();
        let email = format!("{login}@bench.example");
        async move {
            let answer = if n % 2 == 0 {
                client
                    .request_password_reset(RequestPasswordResetRequest {
                        login_or_email: login,
                    })
                    .await
                    .map(|_| ())
            } else {
                client
                    .recover_login(RecoverLoginRequest { email })
                    .await
                    .map(|_| ())
            };
            answer.map_err(|s| s.code())
        }
    });
    // The burst (80 calls, back to back, from addresses each
    // within its limit) every second: 16 callers, each starting a call
    // every 200 ms. A flood beyond that is the rate limits' business
    // (`flood-limited`).
    let burst = tokio::spawn(drive_plan(
        Plan {
            duration: options.duration + Duration::from_millis(500),
            calls: None,
            interval: Some(Duration::from_millis(200)),
        },
        16,
        burst_op,
    ));
    tokio::time::sleep(Duration::from_millis(250)).await;
    let under = drive(options.duration, light, login_op(bench)).await;
    let burst = burst.await?;
    // Every request answered OK is worked off.
    let drain_started = std::time::Instant::now();
    let mut waiting = u64::MAX;
    while drain_started.elapsed() < Duration::from_secs(120) {
        waiting = gardien::domain::pending::waiting(&bench.ctx.db).await?;
        if waiting == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ratio = under.p99_us as f64 / BOUND.as_micros() as f64;
    let unexpected =
        alone.unexpected_errors(&[]) + under.unexpected_errors(&[]) + burst.unexpected_errors(&[]);
    let mut result = outcome(
        "reset-burst",
        ratio,
        "Login p99 during the burst <= 500 ms, every request worked off",
        ratio <= 1.0 && waiting == 0,
        unexpected,
        vec![
            ("login alone", alone),
            ("login during the burst", under),
            ("reset and reminder burst", burst),
        ],
    );
    result.notes.push(if waiting == 0 {
        format!(
            "the burst's requests were all worked off {:.1} s after it ended",
            drain_started.elapsed().as_secs_f64()
        )
    } else {
        format!("{waiting} requests still waiting 120 s after the burst")
    });
    Ok(result)
}

/// A server with the shipped rate limits (the main one runs without), one
/// address flooding `Login` while a paced `IntrospectSession` load goes on:
/// the flood must be answered mostly `RESOURCE_EXHAUSTED` before any
/// password is hashed, memory must not grow, the other calls must not fail.
pub async fn flood_limited(options: &Options) -> anyhow::Result<Outcome> {
    let bench = Bench::start_with(options, 1, |config| {
        config.rate_limit = gardien::config::RateLimitConfig::default();
    })
    .await?;
    let result = flood_limited_on(&bench, options).await;
    bench.stop();
    result
}

async fn flood_limited_on(bench: &Bench, options: &Options) -> anyhow::Result<Outcome> {
    // Four callers, each at most 100 calls a second: within the shipped
    // read limit for one address, as a neighbour service would call.
    let paced = |duration| Plan {
        duration,
        calls: None,
        interval: Some(Duration::from_millis(10)),
    };
    let light = 4;
    let alone = drive_plan(paced(options.duration), light, introspect_op(bench)).await;
    let idle = rss_kib();
    let peak = Arc::new(AtomicU64::new(idle));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let flood_plan = Plan {
        duration: Duration::from_secs(600),
        calls: Some(options.limited_flood_calls),
        interval: None,
    };
    let flood = tokio::spawn(drive_plan(flood_plan, options.concurrency, login_op(bench)));
    let under = {
        let op = introspect_op(bench);
        let mut stats = Vec::new();
        // At least one paced run, and until the flood is over.
        loop {
            let run = drive_plan(paced(Duration::from_millis(500)), light, op.clone()).await;
            stats.push(run);
            if flood.is_finished() {
                break;
            }
        }
        merge(&stats)
    };
    let flood = flood.await?;
    sampling.abort();
    let peak = peak.load(Ordering::Relaxed).max(rss_kib());
    let exhausted = flood.errors.get("ResourceExhausted").copied().unwrap_or(0);
    let flood_calls = flood.calls;
    let share = exhausted as f64 / flood.calls.max(1) as f64;
    let growth_mib = peak.saturating_sub(idle) as f64 / 1024.0;
    let p99_ratio = under.p99_us as f64 / alone.p99_us.max(1) as f64;
    let others_fine = under.unexpected_errors(&[]) == 0 && alone.unexpected_errors(&[]) == 0;
    let unexpected = flood.unexpected_errors(&[Code::ResourceExhausted])
        + under.unexpected_errors(&[])
        + alone.unexpected_errors(&[]);
    let mut result = outcome(
        "flood-limited",
        share,
        ">= 0.90 of the flood RESOURCE_EXHAUSTED, RSS growth <= 32 MiB, other calls unhurt",
        share >= 0.90 && growth_mib <= 32.0 && others_fine,
        unexpected,
        vec![
            ("introspect alone (paced)", alone),
            ("login flood, one address", flood),
            ("introspect under the flood (paced)", under),
        ],
    );
    result.notes.push(format!(
        "{exhausted} of {} logins RESOURCE_EXHAUSTED; RSS idle {} MiB, peak {} MiB (+{growth_mib:.1} MiB); \
         introspection p99 under the flood / alone = {p99_ratio:.2}",
        flood_calls,
        idle / 1024,
        peak / 1024,
    ));
    Ok(result)
}

/// Several runs' figures as one (percentiles: the worst run's).
fn merge(runs: &[Stats]) -> Stats {
    let mut total = runs.first().cloned().unwrap_or_else(|| Stats {
        calls: 0,
        ok: 0,
        seconds: 0.0,
        per_second: 0.0,
        p50_us: 0,
        p99_us: 0,
        p999_us: 0,
        errors: Default::default(),
    });
    for run in runs.iter().skip(1) {
        total.calls += run.calls;
        total.ok += run.ok;
        total.seconds += run.seconds;
        total.p50_us = total.p50_us.max(run.p50_us);
        total.p99_us = total.p99_us.max(run.p99_us);
        total.p999_us = total.p999_us.max(run.p999_us);
        for (code, n) in &run.errors {
            *total.errors.entry(code.clone()).or_default() += n;
        }
    }
    total.per_second = total.ok as f64 / total.seconds.max(f64::MIN_POSITIVE);
    total
}

/// Resident memory of this process (server and client), in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// `flood_connections` connections, each with one Login in flight.
pub async fn flood_memory(bench: &Bench, options: &Options) -> anyhow::Result<Outcome> {
    let idle = rss_kib();
    let channels =
        load::channels(bench.addr, options.flood_connections, options.tls.as_ref()).await?;
    let accounts = bench.accounts.clone();
    let peak = Arc::new(AtomicU64::new(idle));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let clients: Vec<_> = channels.into_iter().map(gardien::proto::accountsecurity::v1::account_security_service_client::AccountSecurityServiceClient::new).collect();
    let op = load::op(move |worker, n| {
        let account = &accounts[(worker + n as usize) % accounts.len()];
        let mut client = clients[worker % clients.len()].clone();
        let (user, password) = (account.login.clone(), account.password.clone());
        async move { log_in(&mut client, &user, &password).await.map(|_| ()) }
    });
    let stats = drive(options.duration, options.flood_connections, op).await;
    sampling.abort();
    let peak = peak.load(Ordering::Relaxed).max(rss_kib());
    let hasher = &bench.ctx.hasher;
    let bound = idle
        + (hasher.workers() + hasher.queue_bound()) as u64 * u64::from(hasher.params().memory_kib)
        + 32 * 1024;
    // A full hashing queue and the load-shed layer answer these by design.
    let unexpected = stats.unexpected_errors(&[Code::ResourceExhausted, Code::Unavailable]);
    let mut result = outcome(
        "flood-memory",
        peak as f64 / bound as f64,
        "peak RSS <= idle + (workers + queue) x argon2 memory + 32 MiB",
        peak <= bound,
        unexpected,
        vec![("login flood", stats)],
    );
    result.notes.push(format!(
        "process RSS (server and client in one process): idle {} MiB, peak {} MiB, bound {} MiB",
        idle / 1024,
        peak / 1024,
        bound / 1024
    ));
    Ok(result)
}

/// The seed's path at scale: each caller owns an account and walks it
/// through journal reads, a ticket, a reset request, a suspension (which
/// must revoke its session at once), the lift and a fresh login.
pub async fn mixed(bench: &Bench, options: &Options) -> anyhow::Result<Outcome> {
    let callers = options.concurrency.min(bench.accounts.len());
    let accounts = bench.accounts.clone();
    let channels = bench.channels.clone();
    let (service, security) = (bench.service_token.clone(), bench.security_token.clone());
    let sessions: Arc<Vec<tokio::sync::Mutex<String>>> = Arc::new(
        accounts
            .iter()
            .map(|a| tokio::sync::Mutex::new(a.session.clone()))
            .collect(),
    );
    let op = load::op(move |worker, n| {
        let account = &accounts[worker];
        let channel = channels[worker % channels.len()].clone();
        let sessions = sessions.clone();
        let (id, user, password) = (
            account.id.clone(),
            account.login.clone(),
            account.password.clone(),
        );
        let (service, security) = (service.clone(), security.clone());
        async move {
            let mut client = gardien::proto::accountsecurity::v1::account_security_service_client::AccountSecurityServiceClient::new(channel.clone());
            let mut session = sessions[worker].lock().await;
            let code = |s: tonic::Status| s.code();
            match n % 6 {
                0 | 1 => {
                    client
                        .list_security_events(bearer(
                            ListSecurityEventsRequest {
                                page_size: 20,
                                ..Default::default()
                            },
                            &session,
                        ))
                        .await
                        .map_err(code)?;
                }
                2 => {
                    let ticket = CreateTicketRequest {
                        client_request_id: uuid::Uuid::new_v4().to_string(),
                        category: TicketCategory::SecurityVerification as i32,
                        subject: "Unrecognised activity on my account".into(),
                        body: "I did not place the last order; please verify.".into(),
                        ..Default::default()
                    };
                    SupportServiceClient::new(channel)
                        .create_ticket(bearer(ticket, &session))
                        .await
                        .map_err(code)?;
                }
                3 => {
                    client
                        .request_password_reset(RequestPasswordResetRequest {
                            login_or_email: user,
                        })
                        .await
                        .map_err(code)?;
                }
                4 => {
                    let suspend = SuspendPasswordRequest {
                        account_id: id.clone(),
                        reason: SuspensionReason::SuspectedCompromise as i32,
                        note: "benchmark".into(),
                        ..Default::default()
                    };
                    client
                        .suspend_password(bearer(suspend, &service))
                        .await
                        .map_err(code)?;
                    // The revoked session must be refused on the very next call.
                    let refused = client
                        .list_security_events(bearer(
                            ListSecurityEventsRequest {
                                page_size: 1,
                                ..Default::default()
                            },
                            &session,
                        ))
                        .await;
                    if refused.map(|_| ()).map_err(code) != Err(Code::Unauthenticated) {
                        return Err(Code::Internal);
                    }
                }
                _ => {
                    client
                        .lift_suspension(bearer(
                            LiftSuspensionRequest {
                                account_id: id,
                                ..Default::default()
                            },
                            &security,
                        ))
                        .await
                        .map_err(code)?;
                    *session = log_in(&mut client, &user, &password).await?;
                }
            }
            Ok(())
        }
    });
    let stats = drive(options.duration, callers, op).await;
    let unexpected = stats.unexpected_errors(&[]);
    let mut result = outcome(
        "mixed",
        stats.per_second,
        "zero unexpected errors",
        true,
        unexpected,
        vec![("mixed", stats)],
    );
    result
        .notes
        .push("ratio column holds calls per second (no ceiling)".into());
    Ok(result)
}
