// SPDX-License-Identifier: GPL-2.0

//! The kernel's tick counter, for coarse timeouts on hot paths (a plain load,
//! where `Instant::now()` reads the clocksource).

use kernel::{bindings, time::Jiffies};

/// The current value of `jiffies`.
pub(crate) fn jiffies() -> Jiffies {
    // SAFETY: `jiffies` is a kernel global that lives forever; the timer tick
    // updates it with word-sized stores, so a volatile word-sized load (the C
    // side's READ_ONCE) sees a whole value.
    unsafe { core::ptr::read_volatile(&raw const bindings::jiffies) }
}
