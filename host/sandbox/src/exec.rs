//! Starting the tool: `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)` + `execve`, the way
//! posix_spawn works, instead of std's `fork` (which std uses whenever a `pre_exec` hook is
//! set). Forking copies the daemon's page tables on every job; a vfork-style clone copies
//! nothing, and `CLONE_PIDFD` hands back a pidfd for the exact child atomically.
//!
//! Invariants (what makes running Rust code in a CLONE_VM child sound):
//! - The calling (spawner) thread is suspended by CLONE_VFORK until the child execs or exits;
//!   the child only reads data prepared by the parent (`ExecImage`, `ChildPlan`) and writes its
//!   own stack, a dedicated mapping with a guard page. No allocation, no locks, no panics.
//! - Every signal is blocked in the parent thread before the clone, so no handler of the daemon
//!   can run in the child on shared memory; the child resets every disposition to SIG_DFL
//!   (which also undoes the SIGPIPE ignore of Rust programs) before unblocking and execve.
//! - Every fd the parent creates here is O_CLOEXEC. The child shares the parent's descriptor
//!   table (CLONE_FILES) until it copies the few below the spawner's stdio slots into a table of
//!   its own; it then dup2s the slots onto 0, 1 and 2 and marks everything above 2
//!   close-on-exec (child.rs, steps 10-12).
//! - A failing child records `[step, errno]` in the plan's `ChildReport` and `_exit`s; the
//!   parent then reaps it before returning the error.

use std::ffi::{CString, c_char, c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::child::{ChildPlan, ChildStep};
use crate::error::SandboxError;

/// Stack of the cloned child: the setup sequence is shallow; generous for unoptimised builds.
const CHILD_STACK_BYTES: usize = 256 * 1024;
/// Inaccessible page below the child stack, so an overflow faults instead of corrupting memory.
const GUARD_BYTES: usize = 4096;
/// Exit status of a child whose setup or execve failed (same convention as shells).
const SETUP_FAILED_EXIT: c_int = 127;
/// Highest signal number (glibc's `_NSIG - 1`).
const MAX_SIGNAL: c_int = 64;

/// Everything execve needs, as C strings built in the parent.
pub struct ExecImage {
    pub program: CString,
    /// argv, argv[0] (= program) included.
    pub argv: Vec<CString>,
    /// `NAME=value` pairs.
    pub envp: Vec<CString>,
    pub cwd: CString,
}

/// A started child: our unreaped child, its pidfd and the read ends of its output pipes.
pub struct Spawned {
    pub pid: libc::pid_t,
    pub pidfd: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// The child's stack: one mapping per spawner thread, reused for every spawn.
pub struct ChildStack {
    base: *mut c_void,
    len: usize,
}

// SAFETY: the mapping is only used by the thread that owns the `ChildStack` (the spawner).
unsafe impl Send for ChildStack {}

impl ChildStack {
    pub fn new() -> io::Result<Self> {
        let len = CHILD_STACK_BYTES + GUARD_BYTES;
        // SAFETY: anonymous private mapping; no existing memory is affected.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the lowest page of the mapping just created becomes the guard page.
        if unsafe { libc::mprotect(base, GUARD_BYTES, libc::PROT_NONE) } != 0 {
            let err = io::Error::last_os_error();
            // SAFETY: unmaps the mapping created above.
            unsafe { libc::munmap(base, len) };
            return Err(err);
        }
        Ok(Self { base, len })
    }

    /// The initial stack pointer (stacks grow down), 16-byte aligned.
    fn top(&self) -> *mut c_void {
        let top = self.base as usize + self.len;
        (top & !15) as *mut c_void
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping this value owns; no child runs on it any more.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// Three fds at fixed numbers, one set per spawner thread, from which its children take their
/// stdio: the child shares the daemon's descriptor table until it makes its own from the fds
/// below `end()` (child.rs, step 10), so whatever it needs must sit at numbers known before the
/// clone. Opened at start-up, when the daemon holds few descriptors, so `end()` is low; they
/// hold `/dev/null` between spawns and are never closed while the spawner lives.
pub struct StdioSlots {
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

impl StdioSlots {
    pub fn open() -> io::Result<Self> {
        Ok(Self {
            stdin: open_dev_null()?,
            stdout: open_dev_null()?,
            stderr: open_dev_null()?,
        })
    }

    /// One past the highest slot.
    fn end(&self) -> u32 {
        let highest = self.numbers().into_iter().max().unwrap_or(0);
        u32::try_from(highest).map_or(u32::MAX, |highest| highest.saturating_add(1))
    }

    fn numbers(&self) -> [RawFd; 3] {
        [&self.stdin, &self.stdout, &self.stderr].map(|fd| fd.as_raw_fd())
    }

    /// Puts the pipes' write ends into the output slots until the guard is dropped.
    fn fill<'a>(&'a self, stdout: &OwnedFd, stderr: &OwnedFd) -> io::Result<FilledSlots<'a>> {
        let filled = FilledSlots(self);
        duplicate_onto(stdout, &self.stdout)?;
        duplicate_onto(stderr, &self.stderr)?;
        Ok(filled)
    }
}

/// While alive, the output slots hold a child's pipes; dropping it puts `/dev/null` back, so
/// the daemon holds no write end and the tool's exit is the pipes' end of file.
struct FilledSlots<'a>(&'a StdioSlots);

impl Drop for FilledSlots<'_> {
    fn drop(&mut self) {
        let slots = self.0;
        // Cannot fail: both fds are open and owned here (dup3 only fails on a bad fd or flag).
        let _ = duplicate_onto(&slots.stdin, &slots.stdout);
        let _ = duplicate_onto(&slots.stdin, &slots.stderr);
    }
}

/// `dup3(from, onto, O_CLOEXEC)`: `onto`'s number now names `from`'s open file.
fn duplicate_onto(from: &OwnedFd, onto: &OwnedFd) -> io::Result<()> {
    // SAFETY: dup3 between two open fds owned by the caller; it replaces `onto` atomically.
    if unsafe { libc::dup3(from.as_raw_fd(), onto.as_raw_fd(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What the child function receives (pointers into the parent's suspended frame).
struct ChildContext<'a> {
    image: &'a ExecImage,
    argv: &'a [*const c_char],
    envp: &'a [*const c_char],
    plan: &'a ChildPlan,
    stdio: [RawFd; 3],
    slots_end: u32,
}

/// Starts `image` under `plan`, its stdio taken from `slots` (stdin `/dev/null`). Must be
/// called on a spawner thread (see spawner.rs), with that thread's own slots. The read ends of
/// the output pipes come back non-blocking, ready for the async runtime.
pub fn spawn(
    image: &ExecImage,
    plan: &ChildPlan,
    stack: &ChildStack,
    slots: &StdioSlots,
) -> Result<Spawned, SandboxError> {
    let pipe_error = |what, source| SandboxError::Pipe { what, source };
    let (stdout_read, stdout_write) = output_pipe().map_err(|e| pipe_error("stdout", e))?;
    let (stderr_read, stderr_write) = output_pipe().map_err(|e| pipe_error("stderr", e))?;
    let filled = slots
        .fill(&stdout_write, &stderr_write)
        .map_err(|e| pipe_error("stdio slots", e))?;
    drop((stdout_write, stderr_write));
    let argv = null_terminated(&image.argv);
    let envp = null_terminated(&image.envp);
    let context = ChildContext {
        image,
        argv: &argv,
        envp: &envp,
        plan,
        stdio: slots.numbers(),
        slots_end: slots.end(),
    };

    let mut pidfd: c_int = -1;
    let blocked = block_all_signals();
    // SAFETY: `child_main` only reads `context` (alive: this frame is suspended by
    // CLONE_VFORK until the child execs or exits) and runs on `stack`, a mapping reserved for
    // it. CLONE_PIDFD stores the pidfd through the parent_tid pointer, a valid c_int. With
    // CLONE_FILES the child shares our descriptor table until it makes its own (child.rs).
    let pid = unsafe {
        libc::clone(
            child_main,
            stack.top(),
            libc::CLONE_VM
                | libc::CLONE_VFORK
                | libc::CLONE_FILES
                | libc::CLONE_PIDFD
                | libc::SIGCHLD,
            &context as *const ChildContext as *mut c_void,
            &mut pidfd as *mut c_int,
        )
    };
    let clone_error = io::Error::last_os_error();
    restore_signals(&blocked);
    drop(filled);
    if pid < 0 {
        return Err(SandboxError::Spawn(clone_error));
    }
    // SAFETY: CLONE_PIDFD returned a new descriptor that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };

    // The child has exec'd or exited. A report means it failed: reap it and say where.
    if let Some((step, errno)) = plan.report.failure() {
        let mut status = 0;
        // SAFETY: waits for the specific child just created, which has exited.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        return Err(SandboxError::ChildSetup {
            step,
            source: io::Error::from_raw_os_error(errno),
        });
    }
    Ok(Spawned {
        pid,
        pidfd,
        stdout: stdout_read,
        stderr: stderr_read,
    })
}

/// The cloned child. Async-signal-safe, allocation-free, panic-free (see module docs).
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `ChildContext` of the suspended parent frame.
    let context = unsafe { &*(arg as *const ChildContext) };
    let plan = context.plan;
    // Signals: SIG_DFL everywhere first, so unblocking can never run a daemon handler here.
    for signal in 1..=MAX_SIGNAL {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            // SAFETY: resets one disposition; EINVAL for libc-reserved numbers is ignored.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
    }
    // SAFETY: `cwd` is a valid C string prepared by the parent.
    let rc = unsafe { libc::chdir(context.image.cwd.as_ptr()) };
    if plan.step(ChildStep::Chdir, result(rc)).is_err()
        || plan.apply().is_err()
        || plan
            .take_own_descriptors(context.stdio, context.slots_end)
            .is_err()
    {
        exit_child();
    }
    // SAFETY: an empty set, then SIG_SETMASK with it: unblock everything for the tool.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
    // SAFETY: program, argv and envp are valid, NUL-terminated, and null-terminated arrays.
    unsafe {
        libc::execve(
            context.image.program.as_ptr(),
            context.argv.as_ptr(),
            context.envp.as_ptr(),
        )
    };
    let _ = plan.step(ChildStep::Exec, Err(errno()));
    exit_child()
}

fn exit_child() -> ! {
    // SAFETY: _exit skips atexit handlers and stdio flushing, which belong to the parent.
    unsafe { libc::_exit(SETUP_FAILED_EXIT) }
}

/// Makes sure fds 0, 1 and 2 are open (on /dev/null when they were closed), so that every fd
/// opened later is above 2 and the child's stdio dup2s cannot overwrite one of them.
pub fn occupy_stdio_fds() -> io::Result<()> {
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries the descriptor.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            // SAFETY: constant path; open returns the lowest free fd, which is `fd`.
            let opened = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            if opened < 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

fn result(rc: c_int) -> Result<(), i32> {
    if rc < 0 { Err(errno()) } else { Ok(()) }
}

fn errno() -> i32 {
    // SAFETY: __errno_location always returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() }
}

fn block_all_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigfillset/pthread_sigmask get valid pointers.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut previous);
        previous
    }
}

fn restore_signals(previous: &libc::sigset_t) {
    // SAFETY: restores the mask saved by `block_all_signals`.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, previous, std::ptr::null_mut()) };
}

fn null_terminated(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// `/dev/null` for reading, opened once per spawner and shared by every child's stdin.
pub fn open_dev_null() -> io::Result<OwnedFd> {
    // SAFETY: constant path, flags only.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A close-on-exec pipe: (read end, write end).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid two-element array for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two new descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A tool output pipe: the write end as the tool gets it (blocking), the read end non-blocking
/// for the runtime (`O_NONBLOCK` belongs to each end's own open file description).
fn output_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = pipe()?;
    // SAFETY: F_SETFL on a pipe end this function owns; a fresh read end has no other flag.
    if unsafe { libc::fcntl(read.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((read, write))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same_file(a: &OwnedFd, b: &OwnedFd) -> bool {
        let id = |fd: &OwnedFd| {
            let meta = std::fs::File::from(fd.try_clone().unwrap())
                .metadata()
                .unwrap();
            (
                std::os::unix::fs::MetadataExt::dev(&meta),
                std::os::unix::fs::MetadataExt::ino(&meta),
            )
        };
        id(a) == id(b)
    }

    #[test]
    fn stdio_slots_hold_the_pipes_only_while_filled() {
        let slots = StdioSlots::open().unwrap();
        let numbers = slots.numbers();
        assert!(numbers.iter().all(|&fd| fd > 2));
        assert!(numbers.iter().all(|&fd| (fd as u32) < slots.end()));
        let (out_read, out_write) = output_pipe().unwrap();
        let (err_read, err_write) = output_pipe().unwrap();
        let filled = slots.fill(&out_write, &err_write).unwrap();
        assert!(same_file(&slots.stdout, &out_write));
        assert!(same_file(&slots.stderr, &err_write));
        assert_eq!(slots.numbers(), numbers, "the numbers never move");
        drop((out_write, err_write));
        drop(filled);
        // Back on /dev/null: no write end is left, so both pipes are at end of file.
        assert!(same_file(&slots.stdout, &slots.stdin));
        assert!(same_file(&slots.stderr, &slots.stdin));
        for read in [out_read, err_read] {
            let mut byte = [0u8; 1];
            // SAFETY: read into a one-byte buffer from a pipe end this test owns.
            let got = unsafe { libc::read(read.as_raw_fd(), byte.as_mut_ptr().cast(), 1) };
            assert_eq!(got, 0, "end of file");
        }
    }
}
