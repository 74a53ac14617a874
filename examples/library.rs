//! reins as a library: start the built-in mock agent headless, hand it a
//! task (delivery verified), wait for the turn it started, read its
//! answer, and stop it.
//!
//! ```text
//! cargo run --example library
//! ```
//!
//! The sessions it starts are ordinary reins sessions (`reins status` sees
//! them while they run). It needs the `reins` binary: `cargo build` puts it
//! beside this example's directory, and `REINS_BIN` or `PATH` name it when
//! this program runs elsewhere.

use std::time::Duration;

fn main() -> Result<(), reins::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let reins = reins::Reins::from_env()?;
        let id = format!("library-{}", std::process::id());
        let session = reins.start(reins::StartOptions::new("mock").id(&id).no_record()).await?;
        println!("started {}", session.id());

        let sent = session.send("write a haiku about reins", reins::Follow::Delivery).await?;
        println!("message {} is {} (turn {:?})", sent.message_id, sent.status, sent.turn);

        let done = session.wait_message(&sent.message_id, Some(Duration::from_secs(60))).await?;
        let status = done.event.as_ref().and_then(|e| e["status"].as_str()).unwrap_or("?");
        println!("turn {:?}: {status}", done.turn);

        println!("answer: {}", session.answer(done.turn)?);

        let how = session.stop(Duration::from_secs(10), true).await?;
        println!("{how}");
        Ok(())
    })
}
