//! The web board in a real browser: headless Chromium driven over WebDriver
//! (chromedriver) against a whole world of services.
//!
//! - The orders page lists the orders created.
//! - An order's page shows its time-and-action calendar.
//! - Answering a decision in the page moves the saga, as read over gRPC.
//! - A new order appears on an open orders page without a reload.
//! - A dead letter is counted under its consumer on the operations page,
//!   and a stalled workflow is skipped from it.
//!
//! Each page is saved as a screenshot under
//! `$CARGO_TARGET_TMPDIR/board/`. The browser comes from Debian
//! (`chromium`, `chromium-driver`; `GENDAN_CHROMIUM` and
//! `GENDAN_CHROMEDRIVER` point elsewhere). Without it the test says so and
//! passes, unless `GENDAN_BROWSER_TESTS=required` (`.ci/run` sets it, so CI
//! never skips it).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use gendan::sim::{self, SimOptions};
use gendan_proto::v1;
use gendan_tests::eventually;
use gendan_tests::world::{WAIT, World, world_on};
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// How long a page may take to show what the services already know.
const SHOWN: Duration = Duration::from_secs(30);

struct Browser {
    client: Client,
    _driver: Child,
    shots: PathBuf,
}

impl Browser {
    /// Chromium under chromedriver, or `None` (said on stderr) when they
    /// are not installed and the test is not required.
    async fn start() -> Option<Browser> {
        let chromium = std::env::var("GENDAN_CHROMIUM").unwrap_or("/usr/bin/chromium".into());
        let driver = std::env::var("GENDAN_CHROMEDRIVER").unwrap_or("/usr/bin/chromedriver".into());
        let required = std::env::var("GENDAN_BROWSER_TESTS").is_ok_and(|v| v == "required");
        let installed =
            std::path::Path::new(&chromium).exists() && std::path::Path::new(&driver).exists();
        if !installed {
            assert!(
                !required,
                "GENDAN_BROWSER_TESTS=required but {chromium} or {driver} is missing \
                 (apt-get install chromium chromium-driver)"
            );
            eprintln!(
                "skipped: no {chromium} or {driver} (apt-get install chromium chromium-driver)"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let options = serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--window-size=1400,1000",
            ],
        });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".to_owned(), options);
        let url = format!("http://127.0.0.1:{port}");
        // chromedriver takes a moment to listen, longer on a busy machine.
        let client = eventually(SHOWN, "chromedriver answers", || {
            let capabilities = capabilities.clone();
            let url = url.clone();
            async move {
                ClientBuilder::new(HttpConnector::new())
                    .capabilities(capabilities)
                    .connect(&url)
                    .await
                    .ok()
            }
        })
        .await
        .expect("a browser session");
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("board");
        std::fs::create_dir_all(&shots).expect("the screenshot folder");
        Some(Browser {
            client,
            _driver: child,
            shots,
        })
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("the screenshot is saved");
        eprintln!("screenshot: {}", path.display());
    }

    /// Waits until `css` matches on the page as it is now (live updates
    /// included, no reload).
    async fn shows(&self, css: &str) -> fantoccini::elements::Element {
        let client = self.client.clone();
        eventually(SHOWN, css, || {
            let client = client.clone();
            async move { client.find(Locator::Css(css)).await.ok() }
        })
        .await
        .unwrap_or_else(|err| panic!("nothing matches {css}: {err}"))
    }

    /// Loads `url` and waits for `css` on it, reloading while the services
    /// have not caught up yet.
    async fn open_showing(&self, url: &str, css: &str) -> fantoccini::elements::Element {
        let client = self.client.clone();
        eventually(SHOWN, css, || {
            let client = client.clone();
            async move {
                client.goto(url).await.ok()?;
                client.find(Locator::Css(css)).await.ok()
            }
        })
        .await
        .unwrap_or_else(|err| panic!("{url} never showed {css}: {err}"))
    }
}

/// The board over `world`'s services, on a free port.
async fn start_board(world: &World, stop: &CancellationToken) -> String {
    let url = |port: u16| format!("http://127.0.0.1:{port}");
    let upstream = gendan_board::Upstream {
        orders: url(world.services.port("orders")),
        saga: url(world.saga.port("saga")),
        finance: url(world.services.port("finance")),
        logistics: url(world.services.port("logistics")),
    };
    let settings = gendan_board::Settings::new("127.0.0.1:0", upstream, world.nats.url.clone());
    let board = gendan_board::Application::build(settings)
        .await
        .expect("the board starts");
    let port = board.port();
    tokio::spawn(board.run_until_stopped(stop.clone()));
    url(port)
}

async fn create(world: &World, index: usize, requested: Option<String>) -> String {
    let mut request = sim::sample_order(11, "board", index);
    if let Some(requested) = requested {
        request.requested_delivery_date = requested;
    }
    world
        .clients
        .orders
        .clone()
        .create_order(request)
        .await
        .expect("an order")
        .into_inner()
        .order
        .expect("the order")
        .order_id
}

async fn open_decision(world: &World, order_id: &str) -> v1::Decision {
    eventually(WAIT, "an open decision", || {
        let mut saga = world.clients.saga.clone();
        let order_id = order_id.to_owned();
        async move {
            let listed = saga
                .list_decisions(v1::ListDecisionsRequest {
                    order_id,
                    open_only: true,
                    limit: 10,
                })
                .await
                .ok()?
                .into_inner();
            listed.decisions.into_iter().next()
        }
    })
    .await
    .expect("the order waits for a person")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_board_in_a_browser() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let mut world = world_on(SimOptions::default(), None).await;
    // Nobody outside answers: the decision waits for the browser.
    let simulator = world.simulator.take().expect("the simulators");
    simulator.stop().await.expect("the simulators stop");
    let stop = CancellationToken::new();
    let board = start_board(&world, &stop).await;

    // One order the factory can make, one wanted tomorrow: the customer is
    // asked about the date.
    let planned = create(&world, 1, None).await;
    let tomorrow = chrono::Utc::now().date_naive() + chrono::Duration::days(1);
    let rushed = create(&world, 2, Some(gendan_proto::date_to_string(tomorrow))).await;

    // The orders page lists both.
    for order_id in [&planned, &rushed] {
        browser
            .open_showing(
                &format!("{board}/"),
                &format!("tr[data-order='{order_id}']"),
            )
            .await;
    }
    browser.screenshot("orders").await;

    // The order's page shows its calendar: the chart and its table, with
    // the delivery among the milestones.
    let decision = open_decision(&world, &rushed).await;
    browser
        .open_showing(&format!("{board}/orders/{rushed}"), "svg.chart-track")
        .await;
    let calendar = browser
        .shows("table.milestones")
        .await
        .text()
        .await
        .expect("the calendar's text");
    assert!(calendar.contains("delivered"), "{calendar}");
    browser.screenshot("order").await;

    // Answering the decision in the page moves the saga.
    browser
        .open_showing(
            &format!("{board}/decisions"),
            &format!("form[action='/decisions/{}']", decision.decision_id),
        )
        .await;
    browser.screenshot("decisions").await;
    let form = format!("form[action='/decisions/{}']", decision.decision_id);
    let answer = decision.options.first().expect("an option").clone();
    browser
        .shows(&format!("{form} input[name='answer'][value='{answer}']"))
        .await
        .click()
        .await
        .expect("the answer is chosen");
    browser
        .shows(&format!("{form} input[name='decided_by']"))
        .await
        .send_keys("board-test")
        .await
        .expect("the name is typed");
    browser
        .shows(&format!("{form} button[type='submit']"))
        .await
        .click()
        .await
        .expect("the form is sent");
    let answered = eventually(WAIT, "the decision answered", || {
        let mut saga = world.clients.saga.clone();
        let order_id = rushed.clone();
        let decision_id = decision.decision_id.clone();
        async move {
            let listed = saga
                .list_decisions(v1::ListDecisionsRequest {
                    order_id,
                    open_only: false,
                    limit: 10,
                })
                .await
                .ok()?
                .into_inner();
            listed
                .decisions
                .into_iter()
                .find(|d| d.decision_id == decision_id && !d.answer.is_empty())
        }
    })
    .await
    .expect("the saga took the board's answer");
    assert_eq!(
        (answered.answer.as_str(), answered.answered_by.as_str()),
        (answer.as_str(), "board-test")
    );

    // A new order appears on the open orders page, without a reload.
    browser
        .open_showing(&format!("{board}/"), &format!("tr[data-order='{planned}']"))
        .await;
    browser
        .client
        .execute("window.gendanNotReloaded = true;", vec![])
        .await
        .expect("a marker on the page");
    // The event stream is open before the order is made, so its update
    // cannot be missed.
    let status = browser.shows("[data-live-status]").await;
    eventually(SHOWN, "the live status", || {
        let status = status.clone();
        async move { (status.text().await.ok()? == "Live").then_some(()) }
    })
    .await
    .expect("the page follows the event stream");
    let late = create(&world, 3, None).await;
    browser.shows(&format!("tr[data-order='{late}']")).await;
    let (same_page, updated, nested) = (
        browser
            .client
            .execute("return window.gendanNotReloaded === true;", vec![])
            .await
            .expect("the marker read"),
        browser
            .client
            .execute("return document.body.dataset.boardUpdated;", vec![])
            .await
            .expect("the update count read"),
        browser
            .client
            .execute(
                "return document.querySelectorAll('[data-live] header.top').length;",
                vec![],
            )
            .await
            .expect("the live region read"),
    );
    assert_eq!(
        same_page,
        serde_json::Value::Bool(true),
        "the page reloaded"
    );
    // Swapped in by the script, as a fragment (not a whole page nested in
    // the live region).
    assert_ne!(updated, serde_json::json!("0"), "no live update counted");
    assert_eq!(nested, serde_json::json!(0), "a whole page was swapped in");
    browser.screenshot("orders-live").await;

    // A message the MES consumer cannot read is counted on the operations
    // page under its consumer.
    world
        .bus
        .jetstream()
        .publish(
            gendan_messaging::subjects::mes("quantity_reported"),
            "not an envelope".into(),
        )
        .await
        .expect("published")
        .await
        .expect("stored");
    let dead = browser
        .open_showing(
            &format!("{board}/ops"),
            "table.dead-letters tr[data-consumer='production-mes'] td.num",
        )
        .await
        .text()
        .await
        .expect("the count");
    assert_eq!(dead.trim(), "1");

    // A workflow parked for an operator (a product without a bill of
    // materials) is skipped from the operations page.
    let mut request = sim::sample_order(11, "board", 4);
    request.lines.truncate(1);
    request.lines[0].product = "BOARD-NO-BOM".to_owned();
    let stuck = world
        .clients
        .orders
        .clone()
        .create_order(request)
        .await
        .expect("an order of an unknown product is taken")
        .into_inner()
        .order
        .expect("the order")
        .order_id;
    let row = format!("table.stalled tr[data-order='{stuck}']");
    browser.open_showing(&format!("{board}/ops"), &row).await;
    browser.screenshot("ops").await;
    browser
        .shows(&format!("{row} input[name='operator']"))
        .await
        .send_keys("board-operator")
        .await
        .expect("the operator is typed");
    browser
        .shows(&format!("{row} button[formaction='/ops/skip']"))
        .await
        .click()
        .await
        .expect("skip is pressed");
    let moved_on = eventually(WAIT, "the stalled step skipped", || {
        let mut saga = world.clients.saga.clone();
        let order_id = stuck.clone();
        async move {
            let view = saga
                .get_saga(v1::GetSagaRequest { order_id })
                .await
                .ok()?
                .into_inner();
            view.steps
                .iter()
                .any(|step| step.step == "check_materials" && step.status == "skipped")
                .then_some(view)
        }
    })
    .await
    .expect("the saga took the board's skip");
    // Skipped by whoever the form named; the workflow went on to the next
    // step (which, for a product without a routing, parks in turn).
    assert!(
        moved_on
            .log
            .iter()
            .any(|entry| entry.action == "skipped" && entry.detail.contains("board-operator")),
        "{moved_on:?}"
    );
    assert!(
        moved_on
            .steps
            .iter()
            .any(|step| step.step == "capacity_check" && step.runs > 0),
        "{moved_on:?}"
    );

    browser.client.close().await.expect("the session ends");
    stop.cancel();
    world.stop().await;
}
