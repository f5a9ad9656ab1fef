use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let n = LIVE.fetch_add(l.size(), Relaxed) + l.size();
        PEAK.fetch_max(n, Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if new > l.size() {
            let n = LIVE.fetch_add(new - l.size(), Relaxed) + new - l.size();
            PEAK.fetch_max(n, Relaxed);
        } else {
            LIVE.fetch_sub(l.size() - new, Relaxed);
        }
        unsafe { System.realloc(p, l, new) }
    }
}
#[global_allocator]
static A: Counting = Counting;

use chrono::{Duration, TimeZone, Utc};
use lifeboat::model::{DatabaseKind, Snapshot, Tags};
fn mib(n: usize) -> f64 {
    n as f64 / 1048576.0
}
fn hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
        .collect::<Vec<_>>()
        .join(" ")
}
fn main() {
    let now = Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap();
    let mut all = Vec::new();
    for region in ["us-east-1", "us-west-2"] {
        let mut snaps = Vec::new();
        for d in 0..1000 {
            let name = format!("bench-db-{d:04}");
            for age in 1..=90 {
                let at = now - Duration::days(age);
                let stamp = at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
                let mut id = format!("lifeboat-{name}-{}", at.format("%Y-%m-%d-%H%M"));
                let mut tags = vec![
                    ("cost-center".to_string(), "cc-42".to_string()),
                    ("lifeboat:managed".into(), "true".into()),
                    ("lifeboat:deployment".into(), "bench".into()),
                    ("lifeboat:home-region".into(), "us-east-1".into()),
                    ("lifeboat:policy".into(), "default".into()),
                    ("lifeboat:source".into(), name.clone()),
                    ("lifeboat:source-kind".into(), "instance".into()),
                    ("lifeboat:plan".into(), "production".into()),
                    ("lifeboat:tier".into(), "daily".into()),
                    ("lifeboat:trigger".into(), "schedule".into()),
                    ("lifeboat:created-at".into(), stamp.clone()),
                ];
                let mut copied_from = None;
                if region == "us-west-2" {
                    let src = format!("arn:aws:rds:us-east-1:123456789012:snapshot:{id}");
                    tags.push(("lifeboat:copied-from".into(), src.clone()));
                    tags.push(("lifeboat:source-region".into(), "us-east-1".into()));
                    tags.push(("lifeboat:copied-at".into(), stamp.clone()));
                    copied_from = Some(src);
                    id = format!("{id}-from-us-east-1");
                }
                let tags: Tags = tags.into_iter().collect();
                snaps.push(Snapshot {
                    arn: format!("arn:aws:rds:{region}:123456789012:snapshot:{id}"),
                    identifier: id,
                    region: region.to_string(),
                    kind: DatabaseKind::Instance,
                    database: name.clone(),
                    created_at: at,
                    status: "available".into(),
                    encrypted: true,
                    copied_from,
                    engine: Some("postgres".into()),
                    tags,
                });
            }
        }
        all.extend(snaps);
    }
    println!(
        "snapshot struct {} B; listing live {:.1} MiB peak {:.1} MiB; per snapshot {:.0} B",
        std::mem::size_of::<Snapshot>(),
        mib(LIVE.load(Relaxed)),
        mib(PEAK.load(Relaxed)),
        LIVE.load(Relaxed) as f64 / all.len() as f64
    );
    println!("{}", hwm());
    let policy = lifeboat::policy::Policy::default_policy().unwrap();
    let deployment = lifeboat::ownership::Deployment::new("bench", "us-east-1").unwrap();
    PEAK.store(LIVE.load(Relaxed), Relaxed);
    let plan =
        lifeboat::retention::plan_run(&policy, &deployment, &[], all, &Default::default(), now);
    println!(
        "after plan_run live {:.1} MiB, peak during {:.1} MiB; groups {}",
        mib(LIVE.load(Relaxed)),
        mib(PEAK.load(Relaxed)),
        plan.groups.len()
    );
    println!("{}", hwm());
}
