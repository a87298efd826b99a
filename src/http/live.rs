//! A value the server reads afresh for each connection or request and a
//! reload replaces: the web configuration, the thresholds. A reader keeps
//! the `Arc` it got for as long as it needs it (a connection keeps the TLS
//! and auth settings it started with); a replacement never waits for
//! readers, and readers never see half of one.

use std::sync::{Arc, RwLock};

#[derive(Debug)]
pub struct Live<T>(RwLock<Arc<T>>);

impl<T> Live<T> {
    pub fn new(value: T) -> Live<T> {
        Live(RwLock::new(Arc::new(value)))
    }

    /// The value now in force.
    pub fn current(&self) -> Arc<T> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `value` in force for every later [`Live::current`].
    pub fn replace(&self, value: T) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(value);
    }
}

impl<T: Default> Default for Live<T> {
    fn default() -> Live<T> {
        Live::new(T::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_keeps_what_it_got_and_later_readers_see_the_replacement() {
        let live = Live::new(1);
        let held = live.current();
        live.replace(2);
        assert_eq!((*held, *live.current()), (1, 2));
    }
}
