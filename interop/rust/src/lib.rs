//! Reporting for the interop scenario: one line per check, and a summary.

use std::future::Future;

pub mod lapin_support;

#[derive(Default)]
pub struct Report {
    passed: usize,
    failed: usize,
}

impl Report {
    /// Runs one check; an `Err` or a panic is a failure with its reason.
    pub async fn check<F, Fut>(&mut self, name: &str, check: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(60), check()).await;
        match outcome {
            Ok(Ok(())) => {
                self.passed += 1;
                println!("ok   {name}");
            }
            Ok(Err(why)) => {
                self.failed += 1;
                println!("FAIL {name}: {why}");
            }
            Err(_) => {
                self.failed += 1;
                println!("FAIL {name}: timed out after 60 s");
            }
        }
    }

    /// Prints the summary and exits 1 if anything failed.
    pub fn finish(self) -> ! {
        println!("{} passed, {} failed", self.passed, self.failed);
        std::process::exit(if self.failed == 0 { 0 } else { 1 });
    }
}

/// `Err` with a message unless `condition`.
pub fn ensure(condition: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(why())
    }
}

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}
