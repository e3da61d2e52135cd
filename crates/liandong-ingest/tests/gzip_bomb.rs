//! A gzip bomb at the Sensors intake is refused with `413` while the decoder holds about the
//! body limit in memory, never the bomb's expanded size. This binary counts every allocation
//! through its own global allocator, so it holds this one test: other tests running on other
//! threads would add to the peak it measures. (The HTTP answer to a bomb is tested in
//! tests/clients.rs, the decoder's error in src/sensors.rs.)
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use liandong_ingest::{sensors, IngestError, MAX_BODY_BYTES};

/// The system allocator, keeping the bytes allocated now and the most allocated at once.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(now, Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most bytes allocated at once while `f` ran, beyond what was allocated before it.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let out = f();
    (out, PEAK.load(Relaxed) - before)
}

/// One gzip member of `mib` MiB of zeros.
fn zeros_gz(mib: usize) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..mib {
        gz.write_all(&zeros).unwrap();
    }
    gz.finish().unwrap()
}

fn assert_413(result: Result<impl std::fmt::Debug, IngestError>) {
    let err = result.unwrap_err();
    assert!(
        matches!(err, IngestError::DecompressedTooLarge { name: "data_list" }),
        "{err:?}"
    );
    assert_eq!(err.status(), axum::http::StatusCode::PAYLOAD_TOO_LARGE);
}

#[test]
fn a_gzip_bomb_is_refused_holding_about_the_limit_not_its_expanded_size() {
    // Bound for the decoder alone: its output may grow to the next doubling past the limit
    // (the limit plus the one byte that proves it is exceeded), plus its window and buffers.
    let gunzip_bound = 2 * MAX_BODY_BYTES + (1 << 20);

    // One member: 64 MiB of zeros, about 64 KiB compressed.
    let one = zeros_gz(64);
    assert!(one.len() < MAX_BODY_BYTES / 16, "{}", one.len());
    let (result, peak) = peak_during(|| sensors::gunzip_bounded("data_list", &one));
    assert_413(result);
    assert!(peak <= gunzip_bound, "peak {peak} bytes for a 64 MiB bomb");

    // Concatenated members (which gunzip and the decoder read as one stream): 1 GiB of
    // zeros in about 1 MiB, under the body limit.
    let member = zeros_gz(1);
    let many = member.repeat(1024);
    assert!(many.len() < MAX_BODY_BYTES, "{}", many.len());
    let (result, peak) = peak_during(|| sensors::gunzip_bounded("data_list", &many));
    assert_413(result);
    assert!(peak <= gunzip_bound, "peak {peak} bytes for a 1 GiB bomb");

    // The whole request decoder, as the intake calls it: form syntax, base64, gunzip. The
    // parameter's form-decoded copy and its base64-decoded bytes add about 2.5 times the
    // bomb's size on top of the decoder's bound.
    let body = format!(
        "gzip=1&data_list={}",
        STANDARD
            .encode(&many)
            .replace('+', "%2B")
            .replace('/', "%2F")
    );
    let (result, peak) = peak_during(|| sensors::decode("project=shop", body.as_bytes()));
    assert_413(result);
    let request_bound = gunzip_bound + 3 * many.len();
    assert!(
        peak <= request_bound,
        "peak {peak} bytes for a 1 GiB bomb in a request (bound {request_bound})"
    );
    println!("peak allocation for a 1 GiB gzip bomb in a request: {peak} bytes");
}
