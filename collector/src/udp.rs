//! The UDP socket's batched system calls: a batch of datagrams comes in
//! with one `recvmmsg(2)` and a batch's acks go out with one `sendmmsg(2)`,
//! instead of a `recvfrom` or `sendto` each.
//!
//! [`RecvBatch::recv`] waits (as long as the socket's read timeout) for the
//! first datagram and takes what else is queued in the same call
//! (`MSG_WAITFORONE`); [`RecvBatch::take_queued`] only takes what is queued
//! (`MSG_DONTWAIT`), and [`RecvBatch::take_more`] adds it to the datagrams
//! already held. None changes the socket's blocking mode. A datagram
//! longer than a slot is cut to the slot, one byte more than the largest
//! valid datagram, so that it still shows as oversized to `wire::decode`.
//! [`send_all`] reports each datagram's outcome, so that one failed send
//! (an ICMP error from an earlier one, a full buffer) is counted for its
//! datagram and the rest still go.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;

use gateway_client::wire;

/// Datagrams taken into one batch, at most.
pub(crate) const MAX_BATCH: usize = 256;

/// Room for one datagram: one byte more than the largest valid one.
const SLOT: usize = wire::MAX_DATAGRAM + 1;

/// The datagrams of one batch as received, and the buffers the kernel
/// fills: [`MAX_BATCH`] slots of [`SLOT`] bytes, each with its address.
pub(crate) struct RecvBatch {
    buf: Vec<u8>,
    names: Vec<libc::sockaddr_storage>,
    /// Only pointed at (by `hdrs`): kept alive here.
    _iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    /// (offset in `buf`, length, sender)
    items: Vec<(usize, usize, SocketAddr)>,
}

impl Default for RecvBatch {
    fn default() -> Self {
        let mut buf = vec![0u8; MAX_BATCH * SLOT];
        // SAFETY: sockaddr_storage is plain data; all zeroes is valid.
        let mut names: Vec<libc::sockaddr_storage> =
            (0..MAX_BATCH).map(|_| unsafe { zeroed() }).collect();
        let mut iovs: Vec<libc::iovec> = buf
            .chunks_exact_mut(SLOT)
            .map(|slot| libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: SLOT,
            })
            .collect();
        let hdrs = iovs
            .iter_mut()
            .zip(names.iter_mut())
            .map(|(iov, name)| {
                // SAFETY: mmsghdr is plain data; all zeroes is valid.
                let mut h: libc::mmsghdr = unsafe { zeroed() };
                h.msg_hdr.msg_name = (name as *mut libc::sockaddr_storage).cast();
                h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h.msg_hdr.msg_iov = iov;
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        // The headers point into `buf`, `names` and `iovs`, whose heap
        // blocks never move: none of these vectors is resized again.
        RecvBatch {
            buf,
            names,
            _iovs: iovs,
            hdrs,
            items: Vec::with_capacity(MAX_BATCH),
        }
    }
}

impl RecvBatch {
    /// Waits for a datagram (as long as the socket's read timeout), then
    /// takes what else is queued, in one call. On error the batch is empty.
    pub(crate) fn recv(&mut self, socket: &UdpSocket) -> io::Result<()> {
        self.items.clear();
        self.take(socket, libc::MSG_WAITFORONE).map(|_| ())
    }

    /// Takes only what is already queued, without waiting (maybe nothing).
    #[cfg(test)]
    pub(crate) fn take_queued(&mut self, socket: &UdpSocket) {
        self.items.clear();
        self.take_more(socket);
    }

    /// Adds what is already queued to the datagrams held, without waiting,
    /// as far as there is room; returns how many came. An error counts as
    /// nothing come: nothing queued, or the ICMP error an earlier ack to a
    /// closed port left on the socket (which the call clears); the next
    /// waiting receive reports a lasting one.
    pub(crate) fn take_more(&mut self, socket: &UdpSocket) -> usize {
        self.take(socket, libc::MSG_DONTWAIT).unwrap_or(0)
    }

    /// Forgets the datagrams held.
    pub(crate) fn clear(&mut self) {
        self.items.clear();
    }

    /// Receives into the free slots after the datagrams held.
    fn take(&mut self, socket: &UdpSocket, flags: libc::c_int) -> io::Result<usize> {
        // Slots are used in order, and a datagram whose address could not
        // be read leaves its slot unused: the next free slot is after the
        // last one filled.
        let start = self
            .items
            .last()
            .map_or(0, |&(offset, _, _)| offset / SLOT + 1);
        if start >= MAX_BATCH {
            return Ok(0);
        }
        let n = loop {
            // SAFETY: `hdrs[start..]` holds MAX_BATCH - start headers whose
            // iovecs and names point into live buffers of the sizes they
            // say (see Default); the kernel writes at most that into each.
            let n = unsafe {
                libc::recvmmsg(
                    socket.as_raw_fd(),
                    self.hdrs[start..].as_mut_ptr(),
                    (MAX_BATCH - start) as libc::c_uint,
                    // glibc takes the flags as int, musl as unsigned int.
                    flags as _,
                    std::ptr::null_mut(),
                )
            };
            if n >= 0 {
                break n as usize;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        let before = self.items.len();
        for (i, h) in self.hdrs.iter_mut().enumerate().skip(start).take(n) {
            let len = (h.msg_len as usize).min(SLOT);
            // The kernel wrote the name's length; it must be whole again
            // for the next call.
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            if let Some(peer) = socket_addr(&self.names[i]) {
                self.items.push((i * SLOT, len, peer));
            }
        }
        Ok(self.items.len() - before)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The datagrams, in the order received.
    pub(crate) fn datagrams(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> {
        self.items
            .iter()
            .map(|&(offset, n, peer)| (&self.buf[offset..offset + n], peer))
    }
}

/// The sender's address as the kernel wrote it (`None` for a family other
/// than IPv4 and IPv6, which a UDP socket of those does not give).
fn socket_addr(name: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(name.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // sockaddr_storage is large and aligned enough for any.
            let a =
                unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddrV4::new(ip, u16::from_be(a.sin_port)).into())
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a =
                unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(
                SocketAddrV6::new(
                    ip,
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )
                .into(),
            )
        }
        _ => None,
    }
}

/// `addr` as a C socket address and its length.
fn c_addr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all zeroes is valid.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a
            // sockaddr_in, which is plain data.
            let s = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            s.sin_family = libc::AF_INET as libc::sa_family_t;
            s.sin_port = a.port().to_be();
            s.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let s = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            s.sin6_port = a.port().to_be();
            s.sin6_flowinfo = a.flowinfo();
            s.sin6_addr.s6_addr = a.ip().octets();
            s.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Datagrams given to one `sendmmsg` call, at most.
const SEND_CHUNK: usize = 64;

/// Sends each `(bytes, to)` of `msgs` (in chunks of [`SEND_CHUNK`], one
/// call each) and tells `outcome` how each went, by its index in `msgs`.
pub(crate) fn send_all(
    socket: &UdpSocket,
    msgs: &[(Vec<u8>, SocketAddr)],
    mut outcome: impl FnMut(usize, io::Result<()>),
) {
    let mut next = 0;
    while next < msgs.len() {
        let chunk = &msgs[next..(next + SEND_CHUNK).min(msgs.len())];
        match send_chunk(socket, chunk) {
            Ok(sent) => {
                for i in next..next + sent {
                    outcome(i, Ok(()));
                }
                next += sent;
            }
            // The first of the chunk failed: said, and the rest go on.
            Err(e) => {
                outcome(next, Err(e));
                next += 1;
            }
        }
    }
}

/// One `sendmmsg` of `chunk`: how many went (at least one), or the error
/// of the first.
fn send_chunk(socket: &UdpSocket, chunk: &[(Vec<u8>, SocketAddr)]) -> io::Result<usize> {
    let mut names: Vec<(libc::sockaddr_storage, libc::socklen_t)> =
        chunk.iter().map(|(_, to)| c_addr(*to)).collect();
    let mut iovs: Vec<libc::iovec> = chunk
        .iter()
        .map(|(bytes, _)| libc::iovec {
            iov_base: bytes.as_ptr().cast_mut().cast(),
            iov_len: bytes.len(),
        })
        .collect();
    let mut hdrs: Vec<libc::mmsghdr> = iovs
        .iter_mut()
        .zip(names.iter_mut())
        .map(|(iov, (name, len))| {
            // SAFETY: mmsghdr is plain data; all zeroes is valid.
            let mut h: libc::mmsghdr = unsafe { zeroed() };
            h.msg_hdr.msg_name = (name as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = *len;
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            h
        })
        .collect();
    loop {
        // SAFETY: each header points at a live address of the length given
        // and one iovec over a live buffer; the kernel only reads them (and
        // writes msg_len into the headers).
        let n = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                hdrs.as_mut_ptr(),
                hdrs.len() as libc::c_uint,
                0,
            )
        };
        if n > 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "sendmmsg sent nothing",
            ));
        }
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_batch_in_and_acks_out_keep_order_sizes_and_addresses() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        let big = vec![b'x'; SLOT + 100];
        a.send_to(b"one", to).unwrap();
        a.send_to(&big, to).unwrap();
        a.send_to(b"", to).unwrap();
        let mut batch = RecvBatch::default();
        // Loopback delivers at once; a bounded number of receives for what
        // the kernel may hand over in more than one call.
        let mut got: Vec<(Vec<u8>, SocketAddr)> = Vec::new();
        for _ in 0..3 {
            if got.len() == 3 {
                break;
            }
            batch.recv(&server).unwrap();
            got.extend(batch.datagrams().map(|(d, p)| (d.to_vec(), p)));
        }
        let me = a.local_addr().unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (b"one".to_vec(), me));
        assert_eq!(got[1].0.len(), SLOT, "cut to the slot, still oversized");
        assert_eq!(got[2], (Vec::new(), me));
        batch.take_queued(&server);
        assert!(batch.is_empty());

        // Out, with a datagram too large to send in between: the others go.
        let msgs = vec![
            (b"ack-1".to_vec(), me),
            (vec![0u8; 70_000], me),
            (b"ack-2".to_vec(), me),
        ];
        let mut results = Vec::new();
        send_all(&server, &msgs, |i, r| results.push((i, r.is_ok())));
        assert_eq!(results, [(0, true), (1, false), (2, true)]);
        a.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 64];
        for expected in [&b"ack-1"[..], b"ack-2"] {
            let (n, from) = a.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (expected, to));
        }
    }

    #[test]
    fn addresses_go_to_c_and_back_unchanged() {
        for addr in [
            "127.0.0.1:9555",
            "10.1.2.3:1",
            "[::1]:9555",
            "[fe80::1%3]:65535",
            "[2001:db8::7]:4",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            let (storage, len) = c_addr(addr);
            let want = match addr {
                SocketAddr::V4(_) => size_of::<libc::sockaddr_in>(),
                SocketAddr::V6(_) => size_of::<libc::sockaddr_in6>(),
            };
            assert_eq!(len as usize, want);
            assert_eq!(socket_addr(&storage), Some(addr));
        }
    }
}
