// SPDX-License-Identifier: GPL-2.0

//! An interrupt-safe spinlock, for data that completions touch in interrupt context.
//!
//! 7.3's `kernel` crate has one: `kernel::sync::SpinLockIrq`, used as is. 7.2's has
//! none, so there the same names stand for a [`Lock`] over a `spinlock_t` taken with
//! `spin_lock_irqsave`. Either way the driver writes `SpinLockIrq<T>`,
//! `new_spinlock_irq!(value)` and `lock()`.
//!
//! [`Lock`]: kernel::sync::lock::Lock

#[cfg(rl_kernel_ge_7_3)]
pub(crate) use kernel::sync::{new_spinlock_irq, SpinLockIrq};

#[cfg(not(rl_kernel_ge_7_3))]
pub(crate) use irqsave::{new_spinlock_irq, SpinLockIrq};

#[cfg(not(rl_kernel_ge_7_3))]
mod irqsave {
    use crate::kapi::helpers::*;
    use kernel::{bindings, ffi::c_ulong, sync::lock::Backend};

    /// A `spinlock_t` held with local interrupts disabled: what 7.3 calls
    /// `SpinLockIrq`.
    pub(crate) type SpinLockIrq<T> = kernel::sync::lock::Lock<T, IrqSaveBackend>;

    /// Creates a [`SpinLockIrq`] initialiser with a new lock class, named after the
    /// source location unless a name is given (like 7.3's macro of the same name).
    macro_rules! new_spinlock_irq {
        ($inner:expr $(, $name:literal)? $(,)?) => {
            $crate::kapi::sync::SpinLockIrq::new(
                $inner,
                ::kernel::optional_name!($($name)?),
                ::kernel::static_lock_class!(),
            )
        };
    }
    pub(crate) use new_spinlock_irq;

    /// `spin_lock_irqsave` / `spin_unlock_irqrestore` on a `spinlock_t`.
    ///
    /// The guard keeps the saved interrupt flags, so guards of two such locks must
    /// be dropped in the reverse order of locking (the driver never holds two).
    pub(crate) struct IrqSaveBackend;

    // SAFETY: `spinlock_t` gives mutual exclusion between `lock` and `unlock`; local
    // interrupts stay disabled in between, so an interrupt handler on this CPU cannot
    // spin on the lock its own CPU holds. `relock` is the default (`lock` again).
    unsafe impl Backend for IrqSaveBackend {
        type State = bindings::spinlock_t;
        type GuardState = c_ulong;

        unsafe fn init(
            ptr: *mut Self::State,
            name: *const kernel::ffi::c_char,
            key: *mut bindings::lock_class_key,
        ) {
            // SAFETY: By the trait's contract `ptr` is valid for write and `name` and
            // `key` stay valid for read indefinitely.
            unsafe { bindings::__spin_lock_init(ptr, name, key) }
        }

        unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
            // SAFETY: By the trait's contract `init` was called on `ptr`.
            unsafe { rust_loop_spin_lock_irqsave(ptr) }
        }

        unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState> {
            let mut flags: c_ulong = 0;
            // SAFETY: By the trait's contract `init` was called on `ptr`; `flags` is a
            // local the helper writes the saved interrupt state to.
            let locked = unsafe { rust_loop_spin_trylock_irqsave(ptr, &mut flags) };
            locked.then_some(flags)
        }

        unsafe fn unlock(ptr: *mut Self::State, guard_state: &Self::GuardState) {
            // SAFETY: By the trait's contract the caller owns the lock, taken by `lock`
            // or `try_lock`, which returned `guard_state`.
            unsafe { rust_loop_spin_unlock_irqrestore(ptr, *guard_state) }
        }

        unsafe fn assert_is_held(ptr: *mut Self::State) {
            // SAFETY: By the trait's contract `init` was called on `ptr`.
            unsafe { bindings::spin_assert_is_held(ptr) }
        }
    }
}

pub(crate) use global::{StaticMutex, StaticMutexGuard};

mod global {
    use core::{cell::UnsafeCell, marker::PhantomData, ops::Deref, ops::DerefMut};
    use kernel::bindings;

    extern "C" {
        // `DEFINE_MUTEX` in rust_loop_helpers.c: initialised at load, never moved.
        static mut rust_loop_ctl_mutex: bindings::mutex;
        static mut rust_loop_validate_mutex: bindings::mutex;
    }

    /// Which of the driver's statically initialised C mutexes guards a
    /// [`StaticMutex`].
    #[derive(Clone, Copy)]
    pub(crate) enum Which {
        /// `loop_ctl_mutex`'s role: the registry of devices.
        Ctl,
        /// `loop_validate_mutex`'s role: binding on top of another loop device.
        Validate,
    }

    /// Data in a `static` behind one of the driver's statically initialised C
    /// mutexes (`DEFINE_MUTEX`), so that it needs no init call: the lock is valid
    /// from module load to unload, and it is usable in any order.
    ///
    /// Several `StaticMutex`es on the same C mutex would only make the lock
    /// coarser (and nest into a deadlock, never into a data race).
    pub(crate) struct StaticMutex<T> {
        which: Which,
        data: UnsafeCell<T>,
    }

    // SAFETY: `data` is reached only through a guard, which holds the C mutex; so
    // one task at a time uses it, from whichever thread: `T: Send` suffices.
    unsafe impl<T: Send> Sync for StaticMutex<T> {}

    impl<T> StaticMutex<T> {
        /// `data` behind the C mutex `which`.
        pub(crate) const fn new(which: Which, data: T) -> Self {
            Self {
                which,
                data: UnsafeCell::new(data),
            }
        }

        fn raw(&self) -> *mut bindings::mutex {
            match self.which {
                Which::Ctl => &raw mut rust_loop_ctl_mutex,
                Which::Validate => &raw mut rust_loop_validate_mutex,
            }
        }

        /// Takes the mutex (sleeps: process context).
        pub(crate) fn lock(&self) -> StaticMutexGuard<'_, T> {
            // SAFETY: `raw` points to a `struct mutex` that `DEFINE_MUTEX`
            // initialised statically and that lives as long as the module's code.
            unsafe { bindings::mutex_lock(self.raw()) };
            StaticMutexGuard {
                lock: self,
                _not_send: PhantomData,
            }
        }
    }

    /// The mutex of a [`StaticMutex`], held; unlocked on drop, by the task that
    /// took it (the guard is not `Send`).
    pub(crate) struct StaticMutexGuard<'a, T> {
        lock: &'a StaticMutex<T>,
        _not_send: PhantomData<*mut ()>,
    }

    impl<T> Deref for StaticMutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            // SAFETY: The guard holds the mutex: no other reference to the data
            // exists until it is dropped.
            unsafe { &*self.lock.data.get() }
        }
    }

    impl<T> DerefMut for StaticMutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            // SAFETY: As in `deref`; `&mut self` makes this the only reference
            // derived from the guard.
            unsafe { &mut *self.lock.data.get() }
        }
    }

    impl<T> Drop for StaticMutexGuard<'_, T> {
        fn drop(&mut self) {
            // SAFETY: This task took the mutex in `lock` (the guard is not `Send`)
            // and has not released it.
            unsafe { bindings::mutex_unlock(self.lock.raw()) };
        }
    }
}

pub(crate) use global::Which as StaticLock;

#[kernel::prelude::kunit_tests(rust_loop_sync)]
mod tests {
    use super::{StaticLock, StaticMutex};

    static COUNTER: StaticMutex<u32> = StaticMutex::new(StaticLock::Validate, 0);

    /// A guard gives the data and releases the C mutex when dropped: a second
    /// lock (same task, same mutex) would deadlock otherwise.
    #[test]
    fn static_mutex_guards_and_releases() {
        let start = *COUNTER.lock();
        *COUNTER.lock() += 1;
        {
            let mut g = COUNTER.lock();
            *g += 1;
        }
        assert_eq!(*COUNTER.lock(), start + 2);
    }
}
