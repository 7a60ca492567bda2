//! A connection whose small writes leave the process together.
//!
//! h2 writes one HTTP/2 frame per system call, and a frame is at most the
//! size the peer accepts: 16 KiB for gRPC's C++ core (pyarrow, the ADBC
//! driver's gRPC), so a 230 MB answer takes some 14,000 `writev` calls, and
//! on loopback each one is also a TCP segment the receiver wakes up for.
//! The C++ Flight server sends the same answer in a few hundred `sendmsg`
//! calls of a megabyte or so. [`CoalescedWrites`] copies writes into one
//! buffer of [`COALESCE_BYTES`] and hands it to the socket when it is full
//! or when the connection has nothing more to write.
//!
//! The second part is the flush. h2 flushes after every frame; a flush that
//! follows a write is therefore put off: the buffer stays, and the
//! connection's task is woken at once, so that it is polled again right
//! after it yields. If that poll writes more, the flush is put off again;
//! if it writes nothing (the answer is waiting on its producer, on the
//! peer's window, or is complete), its flush sends the buffer. No byte
//! waits for anything but the same task's next turn, and small answers
//! (a `GetFlightInfo`, a `LIMIT 10`) leave after one extra poll.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// The most bytes kept before they are written.
pub const COALESCE_BYTES: usize = 256 * 1024;

/// `io` with its writes coalesced (module docs).
#[derive(Debug)]
pub struct CoalescedWrites<IO> {
    io: IO,
    /// Bytes accepted and not yet written, from `sent` on.
    pending: Vec<u8>,
    /// How much of `pending` the socket has taken.
    sent: usize,
    /// Whether bytes were accepted since the last flush was asked for.
    wrote_since_flush: bool,
}

impl<IO> CoalescedWrites<IO> {
    /// `io`, its writes coalesced.
    pub fn new(io: IO) -> Self {
        Self {
            io,
            pending: Vec::new(),
            sent: 0,
            wrote_since_flush: false,
        }
    }

    /// Bytes accepted and not yet written.
    fn unsent(&self) -> usize {
        self.pending.len() - self.sent
    }
}

impl<IO: AsyncWrite + Unpin> CoalescedWrites<IO> {
    /// Writes what is pending; ready once all of it is written.
    fn poll_send_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.pending[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.pending.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Accepts `bufs` (in order, as much as fits), writing what is pending
    /// first when they would not fit.
    fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total: usize = bufs.iter().map(|buf| buf.len()).sum();
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        if self.unsent() + total > COALESCE_BYTES {
            ready!(self.poll_send_pending(cx))?;
        }
        if self.pending.is_empty() && total >= COALESCE_BYTES {
            // Large enough on its own.
            return Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        }
        if self.pending.capacity() < COALESCE_BYTES {
            self.pending
                .reserve_exact(COALESCE_BYTES - self.pending.len());
        }
        let mut accepted = 0;
        for buf in bufs {
            let room = COALESCE_BYTES - self.unsent();
            let take = buf.len().min(room);
            self.pending.extend_from_slice(&buf[..take]);
            accepted += take;
            if take < buf.len() {
                break;
            }
        }
        self.wrote_since_flush = true;
        Poll::Ready(Ok(accepted))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for CoalescedWrites<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_accept(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_accept(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if std::mem::take(&mut this.wrote_since_flush) {
            // Put off: the task runs again right after it yields, and sends
            // the buffer then unless it has more to add (module docs).
            cx.waker().wake_by_ref();
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_send_pending(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_pending(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for CoalescedWrites<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<IO: Connected> Connected for CoalescedWrites<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    use super::*;

    /// A socket that records each write it takes, at most `per_call` bytes
    /// a call.
    struct RecordingSocket {
        writes: Vec<Vec<u8>>,
        per_call: usize,
        shut: bool,
    }

    impl RecordingSocket {
        fn new(per_call: usize) -> Self {
            Self {
                writes: Vec::new(),
                per_call,
                shut: false,
            }
        }

        fn received(&self) -> Vec<u8> {
            self.writes.concat()
        }
    }

    impl AsyncWrite for RecordingSocket {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            let n = buf.len().min(this.per_call);
            this.writes.push(buf[..n].to_vec());
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().shut = true;
            Poll::Ready(Ok(()))
        }
    }

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// An HTTP/2 data frame as h2 hands it over: its 9-byte head, then its
    /// payload (16 KiB, numbered so that order shows).
    fn frame(number: u8) -> (Vec<u8>, Vec<u8>) {
        (vec![number; 9], vec![number; 16 * 1024])
    }

    /// Writes `frames` as h2 does: each frame as one vectored write, then a
    /// flush. Returns the bytes written.
    fn write_frames(
        writes: &mut CoalescedWrites<RecordingSocket>,
        cx: &mut Context<'_>,
        frames: impl IntoIterator<Item = u8>,
    ) -> Vec<u8> {
        let mut expected = Vec::new();
        for number in frames {
            let (head, payload) = frame(number);
            let mut bufs = [IoSlice::new(&head), IoSlice::new(&payload)];
            let mut bufs = &mut bufs[..];
            while !bufs.is_empty() {
                let Poll::Ready(Ok(n)) = Pin::new(&mut *writes).poll_write_vectored(cx, bufs)
                else {
                    panic!("the write did not complete");
                };
                IoSlice::advance_slices(&mut bufs, n);
            }
            assert!(Pin::new(&mut *writes).poll_flush(cx).is_ready());
            expected.extend(head);
            expected.extend(payload);
        }
        expected
    }

    #[test]
    fn frames_leave_together_once_a_flush_follows_no_write() {
        let wakes = Arc::new(Wakes::default());
        let waker = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        let mut writes = CoalescedWrites::new(RecordingSocket::new(usize::MAX));
        let expected = write_frames(&mut writes, &mut cx, 1..=10);
        // Each flush after a write was put off, and woke the task.
        assert!(writes.io.writes.is_empty());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 10);
        // The task's next turn writes nothing: its flush sends all of it.
        assert!(Pin::new(&mut writes).poll_flush(&mut cx).is_ready());
        assert_eq!(writes.io.writes.len(), 1);
        assert_eq!(writes.io.received(), expected);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 10);
    }

    #[test]
    fn a_full_buffer_is_written_without_waiting_for_a_flush() {
        let waker = Waker::from(Arc::new(Wakes::default()));
        let mut cx = Context::from_waker(&waker);
        let mut writes = CoalescedWrites::new(RecordingSocket::new(usize::MAX));
        let expected = write_frames(&mut writes, &mut cx, 1..=40);
        // 40 frames of 16 KiB and 9 bytes fill the buffer twice.
        assert_eq!(writes.io.writes.len(), 2);
        assert!(writes.io.writes.iter().all(|w| w.len() <= COALESCE_BYTES));
        assert!(Pin::new(&mut writes).poll_flush(&mut cx).is_ready());
        assert_eq!(writes.io.writes.len(), 3);
        assert_eq!(writes.io.received(), expected);
    }

    #[test]
    fn a_socket_taking_part_of_a_write_gets_the_rest_in_order() {
        let waker = Waker::from(Arc::new(Wakes::default()));
        let mut cx = Context::from_waker(&waker);
        let mut writes = CoalescedWrites::new(RecordingSocket::new(10_000));
        let expected = write_frames(&mut writes, &mut cx, 1..=40);
        assert!(Pin::new(&mut writes).poll_flush(&mut cx).is_ready());
        assert_eq!(writes.io.received(), expected);
        assert!(writes.io.writes.iter().all(|w| w.len() <= 10_000));
    }

    #[test]
    fn shutting_down_sends_what_is_pending() {
        let waker = Waker::from(Arc::new(Wakes::default()));
        let mut cx = Context::from_waker(&waker);
        let mut writes = CoalescedWrites::new(RecordingSocket::new(usize::MAX));
        let expected = write_frames(&mut writes, &mut cx, 1..=3);
        assert!(writes.io.writes.is_empty());
        assert!(Pin::new(&mut writes).poll_shutdown(&mut cx).is_ready());
        assert_eq!(writes.io.received(), expected);
        assert!(writes.io.shut);
    }

    #[test]
    fn a_write_as_large_as_the_buffer_goes_straight_to_the_socket() {
        let waker = Waker::from(Arc::new(Wakes::default()));
        let mut cx = Context::from_waker(&waker);
        let mut writes = CoalescedWrites::new(RecordingSocket::new(usize::MAX));
        let large = vec![7u8; COALESCE_BYTES];
        let Poll::Ready(Ok(n)) = Pin::new(&mut writes).poll_write(&mut cx, &large) else {
            panic!("the write did not complete");
        };
        assert_eq!(n, COALESCE_BYTES);
        assert_eq!(writes.io.writes.len(), 1);
        assert!(writes.pending.is_empty());
    }
}
