//! Signing in to the pages with a user name, a password and a second factor (docs/ui.md
//! "Sign-in"), over HTTP: the administrator's reset, the forced new password, setting up the
//! authenticator app (QR code and key), recovery codes, sign-out, the account page, the users
//! page, locks, the per-address gate, token sign-in refused by default, and Chinese.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use jiff::Timestamp;
use liaison_core::Role;
use liaison_service::sign_in::{base32_decode, totp_code, totp_step};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};

struct Site {
    base: String,
    http: reqwest::Client,
    f: common::Fixture,
}

use common::enc;

/// The text after `marker` up to the next `"` or `<`.
fn after(html: &str, marker: &str) -> Option<String> {
    let i = html.find(marker)? + marker.len();
    let rest = &html[i..];
    let end = rest.find(['"', '<']).unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

struct Reply {
    status: StatusCode,
    html: String,
    cookie: Option<String>,
    location: Option<String>,
    retry_after: Option<String>,
}

impl Site {
    async fn start() -> Site {
        let f = common::fixture(liaison_service::fixtures::sqlite_node().await.unwrap()).await;
        // The node's own configuration: the defaults (second factor required, no token sign-in).
        let base = common::serve_as_configured(&f.node).await;
        Site {
            base,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            f,
        }
    }

    async fn send(&self, path: &str, form: Option<&[(&str, &str)]>, cookie: Option<&str>) -> Reply {
        let url = format!("{}{}", self.base, path);
        let mut rq = match form {
            Some(form) => self
                .http
                .post(url)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(
                    form.iter()
                        .map(|(k, v)| format!("{k}={}", enc(v)))
                        .collect::<Vec<_>>()
                        .join("&"),
                ),
            None => self.http.get(url),
        };
        if let Some(c) = cookie {
            rq = rq.header(COOKIE, c);
        }
        let r = rq.send().await.unwrap();
        let h = |n| {
            r.headers()
                .get(n)
                .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_string())
        };
        let cookie = h(SET_COOKIE).map(|c| c.split(';').next().unwrap().to_string());
        let (location, retry_after) = (h(LOCATION), h(RETRY_AFTER));
        Reply {
            status: r.status(),
            html: r.text().await.unwrap(),
            cookie,
            location,
            retry_after,
        }
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.send(path, Some(form), None).await
    }

    /// A temporary password from the API, as an administrator's program would get it.
    async fn reset(&self, username: &str, factor: bool) -> String {
        let r = self
            .http
            .post(format!("{}/api/v1/users/{username}/password", self.base))
            .bearer_auth(self.f.token("FBI", Role::Admin))
            .json(&serde_json::json!({"reset_second_factor": factor}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        v["temporary_password"].as_str().unwrap().to_string()
    }

    /// The whole first sign-in after a reset: new password, app set up. Returns the session
    /// cookie, the app's secret and the recovery codes.
    async fn first_sign_in(&self, username: &str, password: &str) -> (String, Vec<u8>, Vec<String>) {
        let temporary = self.reset(username, true).await;
        let r = self
            .post("/login", &[("username", username), ("password", &temporary)])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.html);
        let step = after(&r.html, "name=\"step\" value=\"").unwrap();
        let r = self
            .post(
                "/login/step",
                &[("step", &step), ("new_password", password), ("confirm", password)],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.html);
        let step = after(&r.html, "name=\"step\" value=\"").unwrap();
        let secret = base32_decode(&after(&r.html, "<code id=\"secret\" class=\"secret\">").unwrap()).unwrap();
        let code = totp_code(&secret, totp_step(Timestamp::now()));
        let r = self.post("/login/step", &[("step", &step), ("code", &code)]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.html);
        let codes: Vec<String> = r
            .html
            .split("<li><code>")
            .skip(1)
            .map(|c| c.split('<').next().unwrap().to_string())
            .collect();
        (r.cookie.expect("signed in"), secret, codes)
    }
}

fn csrf(html: &str) -> String {
    after(html, "name=\"csrf\" value=\"").expect("a CSRF field")
}

#[tokio::test]
async fn password_second_factor_reset_and_sign_out() {
    let site = Site::start().await;

    // The sign-in page asks for a user name and a password; no token field by default.
    let r = site.send("/login", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    for want in [
        "id=\"username\"",
        "autocomplete=\"username\"",
        "id=\"password\"",
        "autocomplete=\"current-password\"",
    ] {
        assert!(r.html.contains(want), "{want}");
    }
    assert!(!r.html.contains("name=\"token\""), "token sign-in is off by default");
    let r = site
        .post("/login", &[("token", site.f.token("FBI", Role::Officer))])
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a token is refused when token_sign_in is off"
    );
    assert!(r.cookie.is_none());

    // An administrator's reset (through the API), the new password, the app, the codes.
    let temporary = site.reset("fbi.officer", false).await;
    let r = site
        .post(
            "/login",
            &[("username", "fbi.officer"), ("password", "wrong password!")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.html.contains("The user name or the password is wrong."));
    assert!(r.html.contains("value=\"fbi.officer\""), "the name typed is kept");
    let r = site
        .post("/login", &[("username", "fbi.officer"), ("password", &temporary)])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.cookie.is_none(), "no session before every step is done");
    assert!(r.html.contains("Choose a new password"));
    let step = after(&r.html, "name=\"step\" value=\"").unwrap();
    let r = site
        .post(
            "/login/step",
            &[
                ("step", &step),
                ("new_password", "a good long passphrase"),
                ("confirm", "another one"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.html.contains("The two new passwords are not the same."));
    let r = site
        .post(
            "/login/step",
            &[("step", &step), ("new_password", "short"), ("confirm", "short")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.html.contains("The password must have at least 12 characters."),
        "{}",
        r.html
    );
    let password = "a good long passphrase";
    let r = site
        .post(
            "/login/step",
            &[("step", &step), ("new_password", password), ("confirm", password)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.html.contains("Set up your second factor"));
    assert!(r.html.contains("<svg class=\"qr\" role=\"img\""), "a QR code to scan");
    assert!(r.html.contains("otpauth://totp/Liaison:FBI%20fbi.officer?secret="));
    let step = after(&r.html, "name=\"step\" value=\"").unwrap();
    let secret = base32_decode(&after(&r.html, "<code id=\"secret\" class=\"secret\">").unwrap()).unwrap();
    let r = site.post("/login/step", &[("step", &step), ("code", "000000")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.html.contains("This code is wrong or was already used."));
    let now = Timestamp::now();
    let r = site
        .post(
            "/login/step",
            &[("step", &step), ("code", &totp_code(&secret, totp_step(now)))],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.html.contains("Keep these codes somewhere safe"));
    assert_eq!(r.html.matches("<li><code>").count(), 10, "ten recovery codes");
    let session = r.cookie.expect("the session cookie");
    assert!(session.starts_with("liaison_token=lia_"));
    // The step cannot be used again.
    let r = site.post("/login/step", &[("step", &step), ("code", "123456")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let r = site.send("/home", None, Some(&session)).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = site.send("/account", None, Some(&session)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.html.contains("authenticator app set up"));
    assert!(r.html.contains("10 recovery code(s) left"));
    assert!(r.html.contains("href=\"/account\""), "the navigation links the account");
    assert!(
        !r.html.contains("href=\"/admin/users\""),
        "and the users page only for admins"
    );
    assert_eq!(
        site.send("/admin/users", None, Some(&session)).await.status,
        StatusCode::FORBIDDEN
    );

    // Setting the app up again (a new phone) asks for the password first.
    let r = site.send("/account", None, Some(&session)).await;
    let token = csrf(&r.html);
    let r = site
        .send(
            "/account/second-factor",
            Some(&[("csrf", &token), ("current", "wrong")]),
            Some(&session),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.html.contains("The current password is wrong."));
    let r = site
        .send(
            "/account/second-factor",
            Some(&[("csrf", &token), ("current", password)]),
            Some(&session),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let step = after(&r.html, "name=\"step\" value=\"").unwrap();
    let new_secret = base32_decode(&after(&r.html, "<code id=\"secret\" class=\"secret\">").unwrap()).unwrap();
    let later = Timestamp::now() + jiff::SignedDuration::from_secs(30);
    let r = site
        .send(
            "/account/second-factor/confirm",
            Some(&[
                ("csrf", &token),
                ("step", &step),
                ("code", &totp_code(&new_secret, totp_step(later))),
            ]),
            Some(&session),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    assert_eq!(r.html.matches("<li><code>").count(), 10, "new recovery codes");
    let secret = new_secret;

    // A password change on the account page ends the other sessions, not this browser's.
    let r = site.send("/account", None, Some(&session)).await;
    let token = csrf(&r.html);
    let r = site
        .send(
            "/account/password",
            Some(&[
                ("csrf", &token),
                ("current", "not it"),
                ("new_password", "x"),
                ("confirm", "y"),
            ]),
            Some(&session),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = site
        .send(
            "/account/password",
            Some(&[
                ("csrf", &token),
                ("current", "not it at all"),
                ("new_password", "the next passphrase"),
                ("confirm", "the next passphrase"),
            ]),
            Some(&session),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.html.contains("The current password is wrong."));
    let r = site
        .send(
            "/account/password",
            Some(&[
                ("csrf", &token),
                ("current", password),
                ("new_password", "the next passphrase"),
                ("confirm", "the next passphrase"),
            ]),
            Some(&session),
        )
        .await;
    assert_eq!(
        (r.status, r.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/account?changed=1"))
    );
    let session2 = r.cookie.expect("a fresh session");
    assert_eq!(
        site.send("/home", None, Some(&session)).await.status,
        StatusCode::SEE_OTHER,
        "old session ended"
    );
    assert_eq!(site.send("/home", None, Some(&session2)).await.status, StatusCode::OK);

    // Sign-out ends the session on the node.
    let r = site.send("/home", None, Some(&session2)).await;
    let r = site
        .send("/logout", Some(&[("csrf", &csrf(&r.html))]), Some(&session2))
        .await;
    assert_eq!(r.location.as_deref(), Some("/login?out=1"));
    let r = site.send("/home", None, Some(&session2)).await;
    assert_eq!(r.location.as_deref(), Some("/login?expired=1"));

    // The next sign-in asks for the code; a recovery code also works, once.
    let r = site
        .post(
            "/login",
            &[("username", "fbi.officer"), ("password", "the next passphrase")],
        )
        .await;
    assert!(r.html.contains("Type the six-digit code"), "{}", r.html);
    let step = after(&r.html, "name=\"step\" value=\"").unwrap();
    let r = site
        .post(
            "/login/step",
            &[("step", &step), ("code", &totp_code(&secret, totp_step(now)))],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "the set-up's code is not taken twice"
    );
    let recovery = "zzzzz-zzzzz";
    let r = site.post("/login/step", &[("step", &step), ("code", recovery)]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // The administrator's page: every user with their state; a reset shows the password once.
    let (admin, _, _) = site.first_sign_in("fbi.admin", "the admin's passphrase").await;
    let r = site.send("/admin/users", None, Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.html.contains("data-user=\"fbi.officer\""));
    assert!(r.html.contains("data-user=\"cn-mps.desk\""));
    let r = site
        .send(
            "/admin/users/reset",
            Some(&[
                ("csrf", &csrf(&r.html)),
                ("username", "fbi.officer"),
                ("second_factor", "1"),
            ]),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.html
            .contains("The password and the second factor of fbi.officer are reset.")
    );
    let temporary = after(&r.html, "<code id=\"temporary-password\" class=\"secret\">").unwrap();
    let r = site
        .post("/login", &[("username", "fbi.officer"), ("password", &temporary)])
        .await;
    assert!(r.html.contains("Choose a new password"));

    // In Chinese.
    let r = site.send("/login", None, Some("lang=zh-CN")).await;
    assert!(r.html.contains("用户名") && r.html.contains("密码"));
    let r = site.send("/account", None, Some(&format!("{admin}; lang=zh-CN"))).await;
    assert!(r.html.contains("已设置身份验证器应用"), "{}", r.html);
    let r = site
        .send("/admin/users", None, Some(&format!("{admin}; lang=zh-CN")))
        .await;
    assert!(r.html.contains("重置密码"));
}

#[tokio::test]
async fn locks_and_the_address_gate() {
    let site = Site::start().await;
    let (_, _, codes) = site.first_sign_in("cn-mps.desk", "the desk's passphrase").await;
    assert_eq!(codes.len(), 10);
    // Five wrong passwords lock the account; the right one is then refused too, with the time.
    for _ in 0..4 {
        let r = site
            .post("/login", &[("username", "cn-mps.desk"), ("password", "nope nope nope")])
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = site
        .post("/login", &[("username", "cn-mps.desk"), ("password", "nope nope nope")])
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.html.contains("this account is locked until"), "{}", r.html);
    let r = site
        .post(
            "/login",
            &[("username", "cn-mps.desk"), ("password", "the desk's passphrase")],
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // The recovery codes of the set-up work (after the administrator unlocks with a reset,
    // which keeps the second factor).
    let temporary = site.reset("cn-mps.desk", false).await;
    let r = site
        .post("/login", &[("username", "cn-mps.desk"), ("password", &temporary)])
        .await;
    let step = after(&r.html, "name=\"step\" value=\"").unwrap();
    let r = site.post("/login/step", &[("step", &step), ("code", &codes[0])]).await;
    assert!(
        r.html.contains("Choose a new password"),
        "the code first, then the new password: {}",
        r.html
    );

    // From one address, 30 failures in 15 minutes shut the sign-in for that address.
    let mut shut = None;
    for i in 0..40 {
        let r = site
            .post(
                "/login",
                &[("username", &format!("guess{i}")), ("password", "guess guess")],
            )
            .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            shut = Some((i, r));
            break;
        }
    }
    let (i, r) = shut.expect("the gate shuts");
    assert!(i <= 30, "shut after {i} attempts");
    assert!(r.retry_after.unwrap().parse::<u64>().unwrap() > 60);
    assert!(r.html.contains("Too many failed sign-ins from this computer."));
}
