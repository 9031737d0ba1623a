#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Sign-in for people (docs/ui.md "Sign-in"), on SQLite and, when it answers, PostgreSQL:
//! password, lock after failures, the administrator's reset and the forced change, setting up
//! the second factor, codes used once, recovery codes, step tokens that are no credential,
//! idle and absolute session ends, and the audit trail.

use jiff::{SignedDuration, Timestamp};
use liaison_core::Role;
use liaison_service::ServiceError;
use liaison_service::fixtures::{self, TwoAgencies};
use liaison_service::sign_in::{
    Need, PasswordProblem, Problem, SignIn, SignInConfig, base32_decode, totp_code, totp_step,
};

/// A code the app would show at `at` for the secret of an `Enrol` step.
fn code_for(secret_b32: &str, at: Timestamp) -> String {
    totp_code(&base32_decode(secret_b32).unwrap(), totp_step(at))
}

fn next(s: SignIn) -> (String, Need, Option<Problem>) {
    match s {
        SignIn::Next { step, need, problem } => (step, need, problem),
        other => panic!("expected another step, got {other:?}"),
    }
}

fn done(s: SignIn) -> (String, Vec<String>) {
    match s {
        SignIn::Done {
            session,
            recovery_codes,
        } => (session, recovery_codes),
        other => panic!("expected a session, got {other:?}"),
    }
}

/// A key file in a fresh directory (made by the node on first use).
fn key_file(name: &str) -> std::path::PathBuf {
    std::env::temp_dir()
        .join(format!(
            "liaison-sign-in-{name}-{}-{}",
            std::process::id(),
            Timestamp::now().as_nanosecond()
        ))
        .join("sign-in.key")
}

#[tokio::test]
async fn sign_in_on_every_backend() {
    for node in fixtures::nodes_on_every_backend().await.unwrap() {
        // Secrets sealed under a key file, as `liaison serve` runs.
        let node = node.with_sign_in(SignInConfig {
            key_file: Some(key_file("life")),
            ..SignInConfig::default()
        });
        let f = TwoAgencies::on(node).await.unwrap();
        whole_life(&f).await;
        locks_and_resets(&f).await;
        sessions_end(&f).await;
    }
}

async fn whole_life(f: &TwoAgencies) {
    let n = &f.node;
    let admin = f.who("FBI", Role::Admin);
    let officer = f.who("FBI", Role::Officer);
    let t0 = Timestamp::now();
    // No password yet: refused like a wrong one.
    assert_eq!(
        n.sign_in("fbi.officer", "anything at all", t0).await.unwrap(),
        SignIn::Refused
    );
    // Only admins reset; the temporary password must be changed.
    assert!(matches!(
        n.reset_password(officer, "fbi.admin", false, t0).await,
        Err(ServiceError::Forbidden(_))
    ));
    assert!(matches!(
        n.reset_password(admin, "nobody", false, t0).await,
        Err(ServiceError::NotFound(_))
    ));
    let temporary = n.reset_password(admin, "fbi.officer", false, t0).await.unwrap();
    let state = n.sign_in_state(officer, "fbi.officer").await.unwrap();
    assert!(state.has_password && state.must_change && !state.second_factor);
    assert!(
        n.sign_in_state(officer, "fbi.admin").await.is_err(),
        "others' state is the admin's"
    );

    assert_eq!(
        n.sign_in("fbi.officer", "wrong password", t0).await.unwrap(),
        SignIn::Refused
    );
    assert_eq!(n.sign_in("nobody", &temporary, t0).await.unwrap(), SignIn::Refused);
    let (step, need, _) = next(n.sign_in("fbi.officer", &temporary, t0).await.unwrap());
    assert_eq!(need, Need::NewPassword);
    // The step's token is no credential.
    assert!(matches!(
        n.authenticate(&step, t0).await,
        Err(ServiceError::Unauthenticated(_))
    ));
    for (bad, why) in [
        ("short", PasswordProblem::TooShort { min: 12 }),
        ("my fbi.officer pass", PasswordProblem::ContainsUsername),
        ("abababababababab", PasswordProblem::TooSimple),
        (temporary.as_str(), PasswordProblem::Unchanged),
    ] {
        let (again, need, problem) = next(n.sign_in_step(&step, bad, t0).await.unwrap());
        assert_eq!((again.as_str(), &need), (step.as_str(), &Need::NewPassword));
        assert_eq!(problem, Some(Problem::Password(why)), "{bad}");
    }
    let password = "correct horse battery staple";
    let (enrol, need, _) = next(n.sign_in_step(&step, password, t0).await.unwrap());
    // The step was used: it cannot be answered again.
    assert_eq!(n.sign_in_step(&step, password, t0).await.unwrap(), SignIn::Refused);
    let Need::Enrol { secret, uri } = need else {
        panic!("expected the set-up, got {need:?}")
    };
    assert!(
        uri.starts_with("otpauth://totp/Liaison:FBI%20fbi.officer?secret="),
        "{uri}"
    );
    assert!(uri.contains(&secret));
    assert_eq!(base32_decode(&secret).unwrap().len(), 20);
    // A wrong code: asked again, same step, counted as a failure.
    let (again, _, problem) = next(n.sign_in_step(&enrol, "000000", t0).await.unwrap());
    assert_eq!((again.as_str(), problem), (enrol.as_str(), Some(Problem::WrongCode)));
    let (session, codes) = done(n.sign_in_step(&enrol, &code_for(&secret, t0), t0).await.unwrap());
    assert_eq!(codes.len(), 10);
    let p = n.authenticate(&session, t0).await.unwrap();
    assert_eq!(p.username, "fbi.officer");
    let state = n.sign_in_state(officer, "fbi.officer").await.unwrap();
    assert!(state.second_factor && !state.must_change);
    assert_eq!(state.recovery_codes_left, 10);

    // The next sign-in asks for the code; the code used at set-up is not taken again.
    let (step, need, _) = next(n.sign_in("fbi.officer", password, t0).await.unwrap());
    assert_eq!(need, Need::Code);
    let (_, _, problem) = next(n.sign_in_step(&step, &code_for(&secret, t0), t0).await.unwrap());
    assert_eq!(problem, Some(Problem::WrongCode), "a code is used once");
    let t1 = t0 + SignedDuration::from_secs(30);
    done(n.sign_in_step(&step, &code_for(&secret, t1), t1).await.unwrap());
    // A recovery code, typed loosely, works once.
    let (step, _, _) = next(n.sign_in("fbi.officer", password, t1).await.unwrap());
    let loose = codes[3].to_uppercase().replace('-', " ");
    done(n.sign_in_step(&step, &loose, t1).await.unwrap());
    let (step, _, _) = next(n.sign_in("fbi.officer", password, t1).await.unwrap());
    let (_, _, problem) = next(n.sign_in_step(&step, &codes[3], t1).await.unwrap());
    assert_eq!(problem, Some(Problem::WrongCode));
    assert_eq!(
        n.sign_in_state(officer, "fbi.officer")
            .await
            .unwrap()
            .recovery_codes_left,
        9
    );

    // A new phone from the account page: the old secret stops working.
    let e = n.second_factor_begin(&p, "not the password", t1).await.unwrap_err();
    assert!(matches!(&e, ServiceError::Invalid(f) if f[0].field == "current"), "{e}");
    let (token, need) = n.second_factor_begin(&p, password, t1).await.unwrap();
    let Need::Enrol { secret: secret2, .. } = need else {
        panic!()
    };
    assert!(n.second_factor_confirm(&p, &token, "123", t1).await.is_err());
    let other = f.who("FBI", Role::Supervisor);
    assert!(
        n.second_factor_confirm(other, &token, &code_for(&secret2, t1), t1)
            .await
            .is_err(),
        "another user's set-up"
    );
    let t2 = t1 + SignedDuration::from_secs(30);
    let codes2 = n
        .second_factor_confirm(&p, &token, &code_for(&secret2, t2), t2)
        .await
        .unwrap();
    assert_eq!(codes2.len(), 10);
    let t3 = t2 + SignedDuration::from_secs(30);
    let (step, _, _) = next(n.sign_in("fbi.officer", password, t3).await.unwrap());
    let (_, _, problem) = next(n.sign_in_step(&step, &code_for(&secret, t3), t3).await.unwrap());
    assert_eq!(problem, Some(Problem::WrongCode), "the old phone's code");
    let (_, _, problem) = next(n.sign_in_step(&step, &codes[0], t3).await.unwrap());
    assert_eq!(problem, Some(Problem::WrongCode), "the old recovery codes are gone");
    done(n.sign_in_step(&step, &code_for(&secret2, t3), t3).await.unwrap());

    // Changing one's password asks for the current one and ends the other sessions.
    let s1 = {
        let (step, _, _) = next(n.sign_in("fbi.officer", password, t3).await.unwrap());
        let t4 = t3 + SignedDuration::from_secs(30);
        done(n.sign_in_step(&step, &code_for(&secret2, t4), t4).await.unwrap()).0
    };
    let me = n.authenticate(&s1, t3).await.unwrap();
    let e = n
        .change_password(&me, "not it", "another long passphrase", t3)
        .await
        .unwrap_err();
    assert!(matches!(&e, ServiceError::Invalid(f) if f[0].field == "current"), "{e}");
    let e = n.change_password(&me, password, "short", t3).await.unwrap_err();
    assert!(
        matches!(&e, ServiceError::Invalid(f) if f[0].field == "new_password"),
        "{e}"
    );
    let fresh = n
        .change_password(&me, password, "another long passphrase", t3)
        .await
        .unwrap();
    assert!(n.authenticate(&s1, t3).await.is_err(), "the old session ended");
    assert!(n.authenticate(&fresh, t3).await.is_ok());
    // API tokens are untouched by all this.
    assert!(n.authenticate(f.token("FBI", Role::Officer), t3).await.is_ok());
}

async fn locks_and_resets(f: &TwoAgencies) {
    let n = &f.node;
    let admin = f.who("FBI", Role::Admin);
    let t0 = Timestamp::now();
    let temporary = n.reset_password(admin, "cn-mps.desk", false, t0).await.unwrap();
    for _ in 0..4 {
        assert_eq!(n.sign_in("cn-mps.desk", "wrong", t0).await.unwrap(), SignIn::Refused);
    }
    let locked = n.sign_in("cn-mps.desk", "wrong", t0).await.unwrap();
    let SignIn::Locked { until } = locked else {
        panic!("the fifth failure locks: {locked:?}")
    };
    assert_eq!(
        until.as_millisecond(),
        (t0 + SignedDuration::from_mins(15)).as_millisecond()
    );
    // Locked: even the right password is not taken until then.
    assert_eq!(
        n.sign_in("cn-mps.desk", &temporary, t0).await.unwrap(),
        SignIn::Locked { until }
    );
    let later = until + SignedDuration::from_secs(1);
    assert!(matches!(
        n.sign_in("cn-mps.desk", &temporary, later).await.unwrap(),
        SignIn::Next { .. }
    ));
    // An administrator's reset unlocks at once.
    for _ in 0..5 {
        n.sign_in("cn-mps.desk", "wrong", later).await.unwrap();
    }
    let desk = f.who("CN-MPS", Role::Desk);
    assert!(
        n.sign_in_state(desk, "cn-mps.desk")
            .await
            .unwrap()
            .locked_until
            .is_some()
    );
    let temporary = n.reset_password(admin, "cn-mps.desk", true, later).await.unwrap();
    assert!(matches!(
        n.sign_in("cn-mps.desk", &temporary, later).await.unwrap(),
        SignIn::Next {
            need: Need::NewPassword,
            ..
        }
    ));
    // A disabled user cannot sign in.
    n.set_user_disabled(admin, "cn-mps.desk", true, later).await.unwrap();
    assert_eq!(
        n.sign_in("cn-mps.desk", &temporary, later).await.unwrap(),
        SignIn::Refused
    );
    n.set_user_disabled(admin, "cn-mps.desk", false, later).await.unwrap();
    // Everything is in the audit log.
    let actions = fixtures::audit_actions(n).await.unwrap();
    for a in [
        "user.password_reset",
        "user.sign_in_failed",
        "user.locked",
        "user.second_factor",
        "user.second_factor_reset",
        "user.recovery_code_used",
        "user.password",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in the audit log");
    }
}

async fn sessions_end(f: &TwoAgencies) {
    let n = &f.node;
    let admin = f.who("FBI", Role::Admin);
    let t0 = Timestamp::now();
    let quick = n.clone().with_sign_in(SignInConfig {
        require_second_factor: false,
        ..SignInConfig::default()
    });
    let temporary = quick.reset_password(admin, "fbi.auditor", false, t0).await.unwrap();
    let (step, _, _) = next(quick.sign_in("fbi.auditor", &temporary, t0).await.unwrap());
    let (session, codes) = done(quick.sign_in_step(&step, "a long enough passphrase", t0).await.unwrap());
    assert!(codes.is_empty(), "no second factor asked on this node");
    // Used within the idle time, the session lives on; 31 idle minutes end it.
    let t1 = t0 + SignedDuration::from_mins(20);
    assert!(quick.authenticate(&session, t1).await.is_ok());
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await; // past the auth cache
    let t2 = t1 + SignedDuration::from_mins(29);
    assert!(
        quick.authenticate(&session, t2).await.is_ok(),
        "29 minutes after the last use"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let t3 = t2 + SignedDuration::from_mins(31);
    assert!(quick.authenticate(&session, t3).await.is_err(), "31 idle minutes");
    // And at most 12 hours however busy (idle time as long as the session here).
    let long_idle = n.clone().with_sign_in(SignInConfig {
        require_second_factor: false,
        idle_minutes: 12 * 60,
        ..SignInConfig::default()
    });
    let (session, _) = done(
        long_idle
            .sign_in("fbi.auditor", "a long enough passphrase", t0)
            .await
            .unwrap(),
    );
    assert!(
        long_idle
            .authenticate(&session, t0 + SignedDuration::from_mins(719))
            .await
            .is_ok()
    );
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    assert!(
        long_idle
            .authenticate(&session, t0 + SignedDuration::from_mins(721))
            .await
            .is_err(),
        "past 12 hours"
    );
    // Token sign-in is off unless configured.
    let p = quick.authenticate(f.token("FBI", Role::Analyst), t0).await.unwrap();
    assert!(matches!(
        quick.start_session(&p, t0).await,
        Err(ServiceError::Forbidden(_))
    ));
}

/// Second-factor secrets at rest: with a key file they are sealed (a node without the key
/// cannot use them); one set up before the node had a key keeps working and is sealed by
/// `seal_second_factors`, once.
#[tokio::test]
async fn second_factor_secrets_are_sealed_at_rest() {
    let plain = fixtures::sqlite_node()
        .await
        .unwrap()
        .with_sign_in(SignInConfig::default());
    let f = TwoAgencies::on(plain.clone()).await.unwrap();
    let admin = f.who("FBI", Role::Admin);
    let t0 = Timestamp::now();
    let password = "correct horse battery staple";
    // Set up on a node without a key: stored as hex.
    plain
        .set_password(admin, "fbi.officer", password, false, t0)
        .await
        .unwrap();
    let (enrol, need, _) = next(plain.sign_in("fbi.officer", password, t0).await.unwrap());
    let Need::Enrol { secret, .. } = need else {
        panic!("expected the set-up, got {need:?}")
    };
    done(plain.sign_in_step(&enrol, &code_for(&secret, t0), t0).await.unwrap());

    // The same database with a key: the old secret still works, then is sealed once.
    let key = key_file("seal");
    let sealed = plain.clone().with_sign_in(SignInConfig {
        key_file: Some(key.clone()),
        ..SignInConfig::default()
    });
    let t1 = t0 + SignedDuration::from_secs(60);
    let (step, _, _) = next(sealed.sign_in("fbi.officer", password, t1).await.unwrap());
    done(sealed.sign_in_step(&step, &code_for(&secret, t1), t1).await.unwrap());
    assert_eq!(sealed.seal_second_factors().await.unwrap(), 1);
    assert_eq!(sealed.seal_second_factors().await.unwrap(), 0, "sealed once");
    assert!(key.exists(), "the key file was made");
    let t2 = t1 + SignedDuration::from_secs(60);
    let (step, _, _) = next(sealed.sign_in("fbi.officer", password, t2).await.unwrap());
    done(sealed.sign_in_step(&step, &code_for(&secret, t2), t2).await.unwrap());
    // Without the key, the sealed secret is of no use: the code is not taken.
    let t3 = t2 + SignedDuration::from_secs(60);
    let (step, _, _) = next(plain.sign_in("fbi.officer", password, t3).await.unwrap());
    assert!(plain.sign_in_step(&step, &code_for(&secret, t3), t3).await.is_err());
    // A new set-up on the sealed node is sealed from the start (its step too) and works.
    sealed
        .set_password(admin, "fbi.desk", password, false, t3)
        .await
        .unwrap();
    let (enrol, need, _) = next(sealed.sign_in("fbi.desk", password, t3).await.unwrap());
    let Need::Enrol { secret, .. } = need else {
        panic!("expected the set-up, got {need:?}")
    };
    done(sealed.sign_in_step(&enrol, &code_for(&secret, t3), t3).await.unwrap());
    assert_eq!(sealed.seal_second_factors().await.unwrap(), 0, "nothing in the clear");
    let t4 = t3 + SignedDuration::from_secs(60);
    let (step, _, _) = next(plain.sign_in("fbi.desk", password, t4).await.unwrap());
    assert!(plain.sign_in_step(&step, &code_for(&secret, t4), t4).await.is_err());
}
