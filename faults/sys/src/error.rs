//! The text of an error with every cause after it, for messages that end
//! up in front of a person (a log line, the terminal, an evidence string).
//!
//! It must not be used to build an error that is then returned: attach
//! causes with `#[source]` instead.

/// `error: cause: cause of the cause...`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open the trace")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn every_cause_follows_the_error() {
        let e = Outer(std::io::Error::other("no space left"));
        assert_eq!(chain(&e), "cannot open the trace: no space left");
        assert_eq!(chain(&std::io::Error::other("x")), "x");
    }
}
