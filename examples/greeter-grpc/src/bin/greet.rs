//! A client for the gRPC demo, for machines without grpcurl:
//!
//! ```text
//! cargo run -p greeter-grpc --bin greet -- ada                 # SayHello
//! cargo run -p greeter-grpc --bin greet -- --debug s3cret ada  # in diagnostic mode
//! cargo run -p greeter-grpc --bin greet -- --countdown 3       # Countdown (12: OUT_OF_RANGE)
//! ```
//!
//! `GREETER` names the server (default `http://127.0.0.1:50051`). Prints the reply, or
//! the status, and the response metadata diag adds (`x-debug-id`, `server-timing`, ...);
//! exits with 1 when the call ended with a status other than OK, so scripts can tell.

use greeter_grpc::pb::greeter_client::GreeterClient;
use greeter_grpc::pb::{CountdownRequest, HelloRequest};
use tonic::metadata::MetadataMap;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut debug, mut countdown, mut name) = (None, None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--debug" => debug = Some(args.next().ok_or("--debug needs a credential")?),
            "--countdown" => countdown = Some(args.next().ok_or("--countdown needs a number")?),
            "-h" | "--help" => {
                println!("usage: greet [--debug <credential>] [<name> | --countdown <n>]");
                println!("       GREETER=http://host:port (default http://127.0.0.1:50051)");
                return Ok(());
            }
            _ => name = Some(arg),
        }
    }
    let server = std::env::var("GREETER").unwrap_or_else(|_| "http://127.0.0.1:50051".into());
    let mut client = GreeterClient::connect(server).await?;
    if let Some(from) = countdown {
        let req = with_debug(
            tonic::Request::new(CountdownRequest {
                from: from.parse()?,
            }),
            &debug,
        )?;
        match client.countdown(req).await {
            Err(status) => print_status(&status),
            Ok(res) => {
                print_metadata(res.metadata());
                let mut stream = res.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(tick)) => println!("{}", tick.remaining),
                        Ok(None) => break println!("done"),
                        Err(status) => break print_status(&status),
                    }
                }
            }
        }
        return Ok(());
    }
    let req = with_debug(
        tonic::Request::new(HelloRequest {
            name: name.unwrap_or_default(),
        }),
        &debug,
    )?;
    match client.say_hello(req).await {
        Ok(res) => {
            print_metadata(res.metadata());
            println!("{}", res.into_inner().message);
        }
        Err(status) => print_status(&status),
    }
    Ok(())
}

/// `req` with the `x-debug` metadata, when a credential was given.
fn with_debug<T>(
    mut req: tonic::Request<T>,
    debug: &Option<String>,
) -> Result<tonic::Request<T>, Box<dyn std::error::Error>> {
    if let Some(credential) = debug {
        req.metadata_mut().insert("x-debug", credential.parse()?);
    }
    Ok(req)
}

fn print_metadata(metadata: &MetadataMap) {
    for name in [
        "traceparent",
        "server-timing",
        "x-debug-id",
        "x-trace-id",
        "x-debug-instance",
        "x-debug-status",
    ] {
        if let Some(value) = metadata.get(name).and_then(|v| v.to_str().ok()) {
            println!("{name}: {value}");
        }
    }
}

/// Prints a failed call's status and metadata, and exits with 1.
fn print_status(status: &tonic::Status) {
    print_metadata(status.metadata());
    println!("{:?}: {}", status.code(), status.message());
    std::process::exit(1);
}
