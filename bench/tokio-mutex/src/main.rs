//! tokio-mutex: tokio::sync::Mutex timed the way bench/mutex.c times
//! async_mutex_t, so the two print comparable lines:
//!   uncontended  one task on a current-thread runtime, lock+unlock in a loop;
//!   tasks        T tasks on a T-worker runtime hammering one mutex.
//!   table        bench/mutex.c's table: 50 tasks on the T workers, one
//!                mutex, critical sections of ~50 ns and ~1 us (the same
//!                calibrated multiply chain), back to back or with a yield
//!                between holds, and the pipeline (16 holds, then a yield).
//!                The rwlock and semaphore rows of bench/mutex.c follow, on
//!                tokio::sync::RwLock (read-mostly and write-heavy) and
//!                tokio::sync::Semaphore (4 permits, held across a yield or not).
//! Usage: tokio-mutex [ITERS] (default 2,000,000; a tenth per task under
//! contention). Env THREADS: workers and tasks (default 2); TABLE=0 skips the table.
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Mutex, RwLock, Semaphore};

static SINK: AtomicU64 = AtomicU64::new(1);

fn section_work(n: u64) {
    let mut x = SINK.load(Ordering::Relaxed);
    for _ in 0..black_box(n) {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    }
    SINK.store(x, Ordering::Relaxed);
}

/// Iterations for 50 ns and 1 us: the fastest of several timed runs, as in bench/mutex.c.
fn calibrate() -> (u64, u64) {
    let n = 200_000u64;
    let mut best = f64::MAX;
    for _ in 0..20 {
        let t0 = Instant::now();
        section_work(n);
        let per = t0.elapsed().as_nanos() as f64 / n as f64;
        if per < best {
            best = per;
        }
    }
    ((50.0 / best + 0.5) as u64, (1000.0 / best + 0.5) as u64)
}

const TABLE_TASKS: usize = 50;

fn table(t: usize) {
    let (i50, i1us) = calibrate();
    println!("RESULT mutex table calibration iters_50ns={} iters_1us={}", i50, i1us);
    let shapes: [(&str, u64, i64, bool, i64); 5] = [
        ("50ns", i50, 1, false, 10000),
        ("1us", i1us, 1, false, 1000),
        ("50ns+await", i50, 1, true, 10000),
        ("1us+await", i1us, 1, true, 1000),
        ("pipeline16", i50, 16, true, 10000 - 10000 % 16),
    ];
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(t).build().expect("runtime");
    for (name, section, burst, awaits, holds) in shapes {
        let ns = rt.block_on(async move {
            let m = Arc::new(Mutex::new(0i64));
            let t0 = Instant::now();
            let handles: Vec<_> = (0..TABLE_TASKS)
                .map(|_| {
                    let m = m.clone();
                    tokio::spawn(async move {
                        let mut i = 0;
                        while i < holds {
                            for _ in 0..burst {
                                let mut g = m.lock().await;
                                section_work(section);
                                *g += 1;
                            }
                            if awaits {
                                tokio::task::yield_now().await;
                            }
                            i += burst;
                        }
                    })
                })
                .collect();
            for h in handles {
                h.await.expect("task");
            }
            let total = TABLE_TASKS as i64 * holds;
            let ns = t0.elapsed().as_nanos() as f64 / total as f64;
            assert_eq!(*m.lock().await, total);
            ns
        });
        println!("RESULT mutex table workers={} shape={} tokio_ns={:.1}", t, name, ns);
    }
}

/// bench/mutex.c's rw_table: (name, section, writes in 10 or -1 for the
/// semaphore, yield while holding a permit, holds per task); every task also
/// yields after each hold.
fn rw_table(t: usize) {
    let (i50, i1us) = calibrate();
    let shapes: [(&str, u64, i64, bool, i64); 4] = [
        ("rw_read90", i1us, 1, false, 1000),
        ("rw_write90", i50, 9, false, 10000),
        ("sem4", i1us, -1, false, 1000),
        ("sem4+await", i1us, -1, true, 1000),
    ];
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(t).build().expect("runtime");
    for (name, section, writes, hold_await, holds) in shapes {
        let ns = rt.block_on(async move {
            let rw = Arc::new(RwLock::new((0i64, 0i64)));
            let sem = Arc::new(Semaphore::new(4));
            let t0 = Instant::now();
            let handles: Vec<_> = (0..TABLE_TASKS as i64)
                .map(|id| {
                    let rw = rw.clone();
                    let sem = sem.clone();
                    tokio::spawn(async move {
                        for i in 0..holds {
                            if writes < 0 {
                                let p = sem.acquire().await.expect("permit");
                                section_work(section);
                                if hold_await {
                                    tokio::task::yield_now().await;
                                }
                                drop(p);
                            } else if (i + id) % 10 < writes {
                                let mut g = rw.write().await;
                                section_work(section);
                                g.0 += 1;
                                g.1 += 1;
                            } else {
                                let g = rw.read().await;
                                section_work(section);
                                assert_eq!(g.0, g.1);
                            }
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            for h in handles {
                h.await.expect("task");
            }
            let total = TABLE_TASKS as i64 * holds;
            let ns = t0.elapsed().as_nanos() as f64 / total as f64;
            if writes >= 0 {
                assert_eq!(rw.read().await.0, total / 10 * writes);
            }
            ns
        });
        println!("RESULT mutex table workers={} shape={} tokio_ns={:.1}", t, name, ns);
    }
}

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
    if std::env::var("TABLE").map(|v| v != "0").unwrap_or(true) {
        table(t);
        rw_table(t);
    }
}
