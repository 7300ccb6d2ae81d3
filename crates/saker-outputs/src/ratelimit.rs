//! Token buckets against alert floods: one global, one per rule.

use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug, Clone)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64, burst: u64, now: Instant) -> Bucket {
        let burst = burst.max(1) as f64;
        Bucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.last = now;
    }

    fn has_token(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= 1.0
    }
}

/// `outputs` (falco.yaml): token buckets against alert floods; a rate of 0 means unlimited.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits {
    /// Global alerts per second.
    pub rate: f64,
    pub max_burst: u64,
    /// Alerts per second per rule.
    pub per_rule_rate: f64,
    pub per_rule_max_burst: u64,
    /// Seconds between "N alerts suppressed" summary lines.
    pub summary_interval_s: u64,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            rate: 0.0,
            max_burst: 1000,
            per_rule_rate: 0.0,
            per_rule_max_burst: 100,
            summary_interval_s: 60,
        }
    }
}

/// Decides whether an alert passes; a rate of 0 disables that bucket.
#[derive(Debug)]
pub struct RateLimiter {
    global: Option<Bucket>,
    per_rule_rate: f64,
    per_rule_burst: u64,
    rules: HashMap<String, Bucket>,
    /// Suppressed since the last summary, per rule.
    suppressed: HashMap<String, u64>,
}

impl RateLimiter {
    pub fn new(cfg: &RateLimits) -> RateLimiter {
        let now = Instant::now();
        RateLimiter {
            global: (cfg.rate > 0.0).then(|| Bucket::new(cfg.rate, cfg.max_burst, now)),
            per_rule_rate: cfg.per_rule_rate,
            per_rule_burst: cfg.per_rule_max_burst,
            rules: HashMap::new(),
            suppressed: HashMap::new(),
        }
    }

    pub fn is_unlimited(&self) -> bool {
        self.global.is_none() && self.per_rule_rate <= 0.0
    }

    /// True if the alert may go out; a token is taken from both buckets only
    /// when both have one, so a flooding rule does not starve the global bucket.
    pub fn allow(&mut self, rule: &str, now: Instant) -> bool {
        let global_ok = self.global.as_mut().is_none_or(|b| b.has_token(now));
        let rule_ok = if self.per_rule_rate > 0.0 {
            let (rate, burst) = (self.per_rule_rate, self.per_rule_burst);
            let b = match self.rules.get_mut(rule) {
                Some(b) => b,
                None => self
                    .rules
                    .entry(rule.to_string())
                    .or_insert_with(|| Bucket::new(rate, burst, now)),
            };
            b.has_token(now)
        } else {
            true
        };
        if global_ok && rule_ok {
            if let Some(b) = self.global.as_mut() {
                b.tokens -= 1.0;
            }
            if let Some(b) = self.rules.get_mut(rule) {
                b.tokens -= 1.0;
            }
            true
        } else {
            *self.suppressed.entry(rule.to_string()).or_default() += 1;
            false
        }
    }

    /// Takes the per-rule suppressed counts since the last call, sorted by rule.
    pub fn take_suppressed(&mut self) -> Vec<(String, u64)> {
        let mut v: Vec<_> = self.suppressed.drain().collect();
        v.sort();
        v
    }
}

/// The periodic summary line, e.g. `rate limit: 120 alerts suppressed in the
/// last 60s (Rule A: 100, Rule B: 20)`.
pub fn summary_line(counts: &[(String, u64)], secs: u64) -> Option<String> {
    let total: u64 = counts.iter().map(|c| c.1).sum();
    if total == 0 {
        return None;
    }
    let per: Vec<String> = counts.iter().map(|(r, n)| format!("{r}: {n}")).collect();
    Some(format!(
        "rate limit: {total} alerts suppressed in the last {secs}s ({})",
        per.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cfg(rate: f64, burst: u64, pr: f64, pb: u64) -> RateLimits {
        RateLimits {
            rate,
            max_burst: burst,
            per_rule_rate: pr,
            per_rule_max_burst: pb,
            summary_interval_s: 60,
        }
    }

    #[test]
    fn per_rule_bucket_limits_one_rule_only() {
        let mut l = RateLimiter::new(&cfg(0.0, 0, 1.0, 3));
        let t = Instant::now();
        let passed = (0..10).filter(|_| l.allow("noisy", t)).count();
        assert_eq!(passed, 3);
        assert!(l.allow("quiet", t));
        // Two seconds later two more tokens.
        let t2 = t + Duration::from_secs(2);
        assert_eq!((0..10).filter(|_| l.allow("noisy", t2)).count(), 2);
        assert_eq!(l.take_suppressed(), vec![("noisy".to_string(), 15)]);
        assert!(l.take_suppressed().is_empty());
    }

    #[test]
    fn global_bucket() {
        let mut l = RateLimiter::new(&cfg(10.0, 5, 0.0, 0));
        let t = Instant::now();
        let passed = (0..20).filter(|i| l.allow(&format!("r{i}"), t)).count();
        assert_eq!(passed, 5);
        assert_eq!(
            summary_line(&l.take_suppressed()[..2], 60).unwrap(),
            "rate limit: 2 alerts suppressed in the last 60s (r10: 1, r11: 1)"
        );
        assert!(RateLimiter::new(&cfg(0.0, 0, 0.0, 0)).is_unlimited());
    }
}
