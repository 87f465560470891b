//! tokio-mutex: tokio::sync::Mutex timed the way bench/mutex.c times
//! async_mutex_t, so the two print comparable lines:
//!   uncontended  one task on a current-thread runtime, lock+unlock in a loop;
//!   tasks        T tasks on a T-worker runtime hammering one mutex.
//! Usage: tokio-mutex [ITERS] (default 2,000,000; a tenth per task under
//! contention). Env THREADS: workers and tasks (default 2).
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Mutex;

async fn lock_loop(m: &Mutex<i64>, n: i64) {
    for _ in 0..n {
        let mut g = m.lock().await;
        *g += 1;
    }
}

fn main() {
    let n: i64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).filter(|&n| n > 0).unwrap_or(2_000_000);
    let t: usize = std::env::var("THREADS").ok().and_then(|s| s.parse().ok()).filter(|&t| t > 0).unwrap_or(2).min(64);

    let ct = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let unc = ct.block_on(async {
        let m = Mutex::new(0i64);
        lock_loop(&m, n / 10).await; // warm up
        let t0 = Instant::now();
        lock_loop(&m, n).await;
        let ns = t0.elapsed().as_nanos() as f64 / n as f64;
        assert_eq!(*m.lock().await, n + n / 10);
        ns
    });

    let iters = n / 10;
    let mt = tokio::runtime::Builder::new_multi_thread().worker_threads(t).build().expect("runtime");
    let tasks = mt.block_on(async {
        let m = Arc::new(Mutex::new(0i64));
        let t0 = Instant::now();
        let handles: Vec<_> = (0..t)
            .map(|_| {
                let m = m.clone();
                tokio::spawn(async move { lock_loop(&m, iters).await })
            })
            .collect();
        for h in handles {
            h.await.expect("task");
        }
        let ns = t0.elapsed().as_nanos() as f64 / (t as f64 * iters as f64);
        assert_eq!(*m.lock().await, t as i64 * iters);
        ns
    });

    println!("RESULT mutex uncontended tokio_ns={:.1}", unc);
    println!("RESULT mutex tasks workers={} tokio_ns={:.1}", t, tasks);
}
