//! The status page's files, built into the binary (the page works with no network beyond this
//! server). Sources in `src/web/assets/`.

/// A file the page loads.
#[derive(Debug)]
pub(crate) struct Asset {
    pub(crate) path: &'static str,
    pub(crate) content_type: &'static str,
    pub(crate) body: &'static str,
}

pub(crate) const INDEX: Asset =
    Asset { path: "/", content_type: "text/html; charset=utf-8", body: include_str!("assets/index.html") };

/// Every asset, the page first.
pub(crate) const ALL: [Asset; 4] = [
    INDEX,
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/app.js"),
    },
    Asset {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("assets/style.css"),
    },
    Asset { path: "/favicon.svg", content_type: "image/svg+xml", body: include_str!("assets/favicon.svg") },
];

/// Bytes of all assets together (reported by tests and docs; kept to a few tens of kB).
#[cfg(test)]
pub(crate) fn total_size() -> usize {
    ALL.iter().map(|a| a.body.len()).sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn assets_stay_small() {
        // The issue allows a few hundred kB; the page is meant to stay far below.
        assert!(super::total_size() < 100_000, "{} bytes", super::total_size());
    }
}
