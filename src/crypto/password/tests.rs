use super::worker::SALT_BYTES;
use super::*;
use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, PasswordHash, Version};
use argon2::{PasswordHasher, PasswordVerifier};
use std::sync::Mutex;
use tracing::Instrument;

/// Cheap parameters so the tests run fast.
const FAST: Argon2Params = Argon2Params {
    memory_kib: 1024,
    iterations: 1,
    parallelism: 1,
};

fn secret(password: &str) -> SecretString {
    SecretString::from(password)
}

fn pool(params: Argon2Params) -> HashingPool {
    HashingPool::new(params, 2, 16).unwrap()
}

#[tokio::test]
async fn a_hash_verifies_with_the_same_password_and_no_rehash() {
    let pool = pool(Argon2Params::default());
    let phc = pool.hash(secret("correct horse battery")).await.unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    let verified = pool
        .verify(secret("correct horse battery"), Some(phc))
        .await
        .unwrap();
    assert_eq!(
        verified,
        Verified::Valid {
            needs_rehash: false
        }
    );
}

#[test]
fn workers_are_pinned_one_per_cpu_only_when_they_cover_every_cpu() {
    assert_eq!(placement(&[0, 1], 2), vec![Some(0), Some(1)]);
    assert_eq!(placement(&[2, 5], 3), vec![Some(2), Some(5), Some(2)]);
    assert_eq!(placement(&[0, 1, 2, 3], 2), vec![None, None]);
    assert_eq!(placement(&[0], 1), vec![None]);
    assert_eq!(placement(&[], 2), vec![None, None]);
}

#[test]
fn the_allowed_cpus_are_those_of_the_process() {
    let cpus = allowed_cpus();
    assert!(!cpus.is_empty());
    assert!(cpus.windows(2).all(|pair| pair[0] < pair[1]));
}

#[tokio::test]
async fn a_wrong_password_is_invalid() {
    let pool = pool(FAST);
    let phc = pool.hash(secret("correct horse battery")).await.unwrap();
    let verified = pool
        .verify(secret("correct horse battery!"), Some(phc))
        .await
        .unwrap();
    assert_eq!(verified, Verified::Invalid);
}

#[test]
fn the_service_verifier_verifies_its_password_with_the_workers_code() {
    let mut verifier = ServiceVerifier::new(FAST).unwrap();
    assert!(verifier.phc.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
    for _ in 0..3 {
        verifier.verify().unwrap();
    }
    verifier.password = b"another password";
    assert!(verifier.verify().is_err());
}

#[tokio::test]
async fn an_unknown_account_is_invalid() {
    let verified = pool(FAST).verify(secret("anything"), None).await.unwrap();
    assert_eq!(verified, Verified::Invalid);
}

#[tokio::test]
async fn salts_are_random() {
    let pool = pool(FAST);
    let first = pool.hash(secret("same password")).await.unwrap();
    let second = pool.hash(secret("same password")).await.unwrap();
    assert_ne!(first, second);
    let salt = PasswordHash::new(&first).unwrap().salt.unwrap();
    assert_eq!(salt.decode_b64(&mut [0u8; 64]).unwrap().len(), SALT_BYTES);
}

#[tokio::test]
async fn a_hash_made_with_weaker_params_verifies_and_needs_rehash() {
    let weak = Argon2Params {
        memory_kib: 8192,
        iterations: 1,
        parallelism: 1,
    };
    let phc = pool(weak).hash(secret("correct horse")).await.unwrap();
    let verified = pool(Argon2Params::default())
        .verify(secret("correct horse"), Some(phc))
        .await
        .unwrap();
    assert_eq!(verified, Verified::Valid { needs_rehash: true });
}

#[tokio::test]
async fn a_hash_needing_more_memory_than_configured_still_verifies() {
    let strong = Argon2Params {
        memory_kib: 4096,
        iterations: 1,
        parallelism: 2,
    };
    let phc = pool(strong).hash(secret("correct horse")).await.unwrap();
    let verified = pool(FAST)
        .verify(secret("correct horse"), Some(phc))
        .await
        .unwrap();
    assert_eq!(verified, Verified::Valid { needs_rehash: true });
}

#[tokio::test]
async fn hashes_interoperate_with_the_argon2_crate() {
    let pool = pool(FAST);
    let params = FAST.to_argon2().unwrap();
    let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(b"interop", &SaltString::encode_b64(&[7u8; 16]).unwrap())
        .unwrap()
        .to_string();
    let verified = pool.verify(secret("interop"), Some(theirs)).await.unwrap();
    assert_eq!(
        verified,
        Verified::Valid {
            needs_rehash: false
        }
    );

    let ours = pool.hash(secret("interop")).await.unwrap();
    let parsed = PasswordHash::new(&ours).unwrap();
    assert!(Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .verify_password(b"interop", &parsed)
        .is_ok());
}

#[tokio::test]
async fn malformed_or_foreign_hashes_are_invalid() {
    let pool = pool(FAST);
    let argon2i = Argon2::new(
        Algorithm::Argon2i,
        Version::V0x13,
        FAST.to_argon2().unwrap(),
    )
    .hash_password(b"pw", &SaltString::encode_b64(&[1u8; 16]).unwrap())
    .unwrap()
    .to_string();
    let huge = "$argon2id$v=19$m=4294967295,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$\
                AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let short_salt = "$argon2id$v=19$m=1024,t=1,p=1$AAAA$\
                      AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for phc in [
        "",
        "not a hash",
        "$argon2id$v=19$m=1024,t=1,p=1$",
        "$argon2id$v=19$m=1024,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA",
        "$bcrypt$v=19$m=1024,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAA",
        "$argon2id$v=99$m=1024,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAA",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        huge,
        short_salt,
        &argon2i,
    ] {
        let verified = pool.verify(secret("pw"), Some(phc.to_owned())).await;
        assert_eq!(verified.unwrap(), Verified::Invalid, "{phc}");
    }
}

#[tokio::test]
async fn long_passwords_hash_and_verify() {
    let pool = pool(FAST);
    for length in [128, 1000] {
        let password: String = "é-Zx9 ".chars().cycle().take(length).collect();
        let phc = pool.hash(secret(&password)).await.unwrap();
        let verified = pool.verify(secret(&password), Some(phc)).await.unwrap();
        assert_eq!(
            verified,
            Verified::Valid {
                needs_rehash: false
            }
        );
    }
}

#[tokio::test]
async fn a_full_queue_answers_overloaded_at_once() {
    let slow = Argon2Params {
        memory_kib: 19_456,
        iterations: 4,
        parallelism: 1,
    };
    let pool = HashingPool::new(slow, 1, 1).unwrap();
    // Every task submits on its first poll, all within microseconds, while
    // one hash takes tens of milliseconds: at most one job runs and one
    // waits; one more of slack in case the worker finished the first.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.hash(secret("correct horse")).await })
        })
        .collect();
    let mut accepted = 0;
    let mut overloaded = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(HashError::Overloaded) => overloaded += 1,
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert!(
        overloaded >= 1,
        "accepted {accepted}, overloaded {overloaded}"
    );
    assert!(
        accepted <= pool.workers() + pool.queue_bound() + 1,
        "{accepted}"
    );
    assert_eq!(accepted + overloaded, 8);
    assert_eq!(pool.queue_depth(), 0);
}

#[tokio::test]
async fn a_dropped_caller_does_not_break_the_pool() {
    let pool = HashingPool::new(FAST, 1, 4).unwrap();
    let abandoned = pool.hash(secret("abandoned"));
    // Submit, then drop the future before the result arrives.
    let _ = tokio::time::timeout(std::time::Duration::ZERO, abandoned).await;
    let phc = pool.hash(secret("next")).await.unwrap();
    let verified = pool.verify(secret("next"), Some(phc)).await.unwrap();
    assert_eq!(
        verified,
        Verified::Valid {
            needs_rehash: false
        }
    );
}

#[tokio::test]
async fn the_caller_span_is_entered_on_the_worker() {
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::Layer;

    struct EnteredOn(Arc<Mutex<Vec<(String, String)>>>);
    impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for EnteredOn {
        fn on_enter(&self, id: &tracing::Id, ctx: Context<'_, S>) {
            let name = ctx.span(id).map(|span| span.name()).unwrap_or_default();
            let thread = thread::current().name().unwrap_or_default().to_owned();
            self.0.lock().unwrap().push((name.to_owned(), thread));
        }
    }

    let entered = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(EnteredOn(Arc::clone(&entered)));
    let _guard = tracing::subscriber::set_default(subscriber);
    let pool = HashingPool::new(FAST, 1, 1).unwrap();
    pool.hash(secret("traced"))
        .instrument(tracing::info_span!("login_request"))
        .await
        .unwrap();
    let entered = entered.lock().unwrap();
    assert!(
        entered.contains(&("login_request".into(), "argon2-worker-0".into())),
        "{entered:?}"
    );
}

#[test]
fn params_are_validated_naming_the_field() {
    assert!(Argon2Params::default().validate().is_ok());
    let bad_memory = Argon2Params {
        memory_kib: 4,
        ..Argon2Params::default()
    };
    assert!(bad_memory.validate().unwrap_err().contains("memory_kib"));
    let bad_iterations = Argon2Params {
        iterations: 0,
        ..Argon2Params::default()
    };
    assert!(bad_iterations
        .validate()
        .unwrap_err()
        .contains("iterations"));
    let bad_parallelism = Argon2Params {
        parallelism: 0,
        ..Argon2Params::default()
    };
    assert!(bad_parallelism
        .validate()
        .unwrap_err()
        .contains("parallelism"));
    assert!(HashingPool::new(bad_memory, 1, 1).is_err());
    assert!(HashingPool::new(FAST, 0, 1).is_err());
}
