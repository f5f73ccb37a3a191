//! The permessage-deflate memory setting of the conformance examples
//! (`echo_server`, `autobahn_client`), from the environment, so that the
//! Autobahn suite runs against each (`autobahn/run.sh` passes it on):
//!
//! - `WSM_DEFLATE=dedicated:8`: a dedicated state at zlib memLevel 8 (1–9);
//! - `WSM_DEFLATE=shared:12`: states borrowed from one pool, 12-bit windows
//!   of context kept (8–15);
//! - `WSM_DEFLATE=shared-no-context`: borrowed, no context takeover asked;
//! - unset or empty: the crate's default.
//!
//! `WSM_MAX_MESSAGE=N` sets `max_message_size` and `max_frame_size` to `N`
//! bytes, for the interop tests of the limits under compression.

use wsmachine::Config;

/// The config with the setting of `WSM_DEFLATE` applied. One pool serves
/// every connection made from clones of it.
pub fn config_from_env(mut config: Config) -> Config {
    if let Ok(max) = std::env::var("WSM_MAX_MESSAGE") {
        let max: u64 = max.parse().expect("WSM_MAX_MESSAGE: a number of bytes");
        config.max_message_size = max;
        config.max_frame_size = max;
    }
    let setting = std::env::var("WSM_DEFLATE").unwrap_or_default();
    if setting.is_empty() {
        return config;
    }
    #[cfg(feature = "deflate")]
    {
        use wsmachine::deflate::{CodecPool, DeflateConfig};
        let number = |s: &str| -> u8 {
            s.parse()
                .unwrap_or_else(|_| panic!("WSM_DEFLATE={setting}: not a number: {s}"))
        };
        let pool = CodecPool::new();
        config.deflate = Some(match setting.split_once(':') {
            Some(("dedicated", n)) => DeflateConfig::dedicated(number(n)),
            Some(("shared", n)) => DeflateConfig::shared(&pool, number(n)),
            None if setting == "shared-no-context" => DeflateConfig::shared_without_context(&pool),
            _ => panic!("WSM_DEFLATE={setting}: dedicated:N, shared:BITS or shared-no-context"),
        });
        eprintln!("permessage-deflate: {setting}");
    }
    #[cfg(not(feature = "deflate"))]
    panic!("WSM_DEFLATE={setting} needs the deflate feature");
    #[allow(unreachable_code)]
    config
}
