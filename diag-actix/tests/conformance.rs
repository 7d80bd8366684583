//! diag-actix passes the adapter conformance suite.

use actix_web::{App, HttpResponse, HttpServer, web};
use diag_conformance::Target;

fn start_server() -> std::net::SocketAddr {
    let diag = diag_conformance::diag();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                App::new()
                    .wrap(diag_actix::DiagMiddleware::new(&diag))
                    .configure(diag_actix::configure(&diag))
                    .route(
                        "/echo",
                        web::post().to(|body: web::Payload| async move {
                            HttpResponse::Ok()
                                .content_type("application/octet-stream")
                                .streaming(body)
                        }),
                    )
                    .route("/users/{id}", web::get().to(|| async { "a user" }))
                    .route(
                        "/panic/{id}",
                        web::get().to(|| async {
                            panic!("a bug in the handler");
                            #[allow(unreachable_code)]
                            "never"
                        }),
                    )
                    .route(
                        "/sized",
                        web::get().to(|| async {
                            let size = diag_conformance::SIZED_BODY;
                            let chunks = (0..4).map(move |_| {
                                Ok::<_, std::io::Error>(web::Bytes::from(vec![b's'; size / 4]))
                            });
                            HttpResponse::Ok()
                                .no_chunking(size as u64)
                                .streaming(futures_util::stream::iter(chunks))
                        }),
                    )
            })
            .workers(1)
            .bind("127.0.0.1:0")
            .unwrap();
            tx.send(server.addrs()[0]).unwrap();
            server.run().await.unwrap();
        });
    });
    rx.recv().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_adapter_conforms() {
    let addr = start_server();
    diag_conformance::run_all(&Target::new(format!("http://{addr}"))).await;
}
