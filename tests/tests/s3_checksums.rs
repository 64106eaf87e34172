//! Probe (temporary).
use shared::adapters::s3::S3Objects;
use shared::config::AwsClients;
use shared::hashing::{sha256, to_b64};
use shared::ports::ObjectStore;

struct Server { endpoint: String, _root: tempfile::TempDir, task: tokio::task::JoinHandle<()> }
impl Drop for Server { fn drop(&mut self) { self.task.abort(); } }

async fn start() -> Server {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    let root = tempfile::tempdir().unwrap();
    let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
    let mut b = s3s::service::S3ServiceBuilder::new(fs);
    b.set_auth(s3s::auth::SimpleAuth::from_single("testing", "testing"));
    let service = b.build();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let http = Builder::new(TokioExecutor::new());
        loop {
            let Ok((sock, _)) = listener.accept().await else { continue };
            let conn = http.serve_connection(TokioIo::new(sock), service.clone()).into_owned();
            tokio::spawn(async move { let _ = conn.await; });
        }
    });
    Server { endpoint: format!("http://{addr}"), _root: root, task }
}

#[tokio::test(flavor = "multi_thread")]
async fn probe() {
    let srv = start().await;
    let clients = AwsClients::for_endpoint(&srv.endpoint).await;
    clients.s3.create_bucket().bucket("dtx-checksums").send().await.unwrap();
    let s3 = S3Objects::new(clients.s3.clone(), "dtx-checksums");
    let r = s3.put_object("k1", b"hello".to_vec(), &to_b64(&sha256(b"other")), &[("sha256".into(), "x".into())]).await;
    println!("bad put: {r:?}");
    println!("head after bad: {:?}", s3.head_object("k1").await);
    let r = s3.put_object("k2", b"hello".to_vec(), &to_b64(&sha256(b"hello")), &[("sha256".into(), "x".into())]).await;
    println!("good put: {r:?}");
    println!("head after good: {:?}", s3.head_object("k2").await);
    println!("read: {:?}", s3.read_sha256("k2").await.map(|(d, n)| (to_b64(&d), n)));
    println!("again: {:?}", s3.put_object("k2", b"hello".to_vec(), &to_b64(&sha256(b"hello")), &[]).await);
    let id = s3.create_multipart("m", &[]).await.unwrap();
    println!("bad part: {:?}", s3.upload_part("m", &id, 1, b"part".to_vec(), &to_b64(&sha256(b"nope"))).await);
    for e in walk(srv._root.path()) { println!("file {e}"); }
    panic!("show");
}
fn walk(p: &std::path::Path) -> Vec<String> {
    let mut v = vec![];
    for e in std::fs::read_dir(p).unwrap() { let e = e.unwrap(); if e.file_type().unwrap().is_dir() { v.extend(walk(&e.path())); } else { v.push(e.path().display().to_string()); } }
    v
}
