//! Reading many sockets from a few threads on `epoll` (through mio), and
//! the machine's floor for the notification scenario.
//!
//! [`read_rounds`] is the lean subscriber: no async runtime, one
//! `recvfrom` per readable socket, the arrival time taken as the bytes are
//! read. The notification scenario uses it (with WebSocket and CBOR
//! decoding) to measure the server with as little driver CPU as possible on
//! the two cores they share. [`floor`] uses it with no server at all: plain
//! threads write a ready-made frame of the same size to each of the same
//! number of loopback connections. What that takes is what the kernel and
//! the machine take; no server on this machine can deliver to that many
//! sockets faster.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

/// Deliveries so far over all reader threads, and the condition a writer
/// waits on.
#[derive(Default)]
pub(crate) struct Delivered {
    count: Mutex<usize>,
    changed: Condvar,
}

impl Delivered {
    fn add(&self, n: usize) {
        *self.count.lock().unwrap() += n;
        self.changed.notify_all();
    }

    /// Blocks until `total` deliveries have arrived; panics after 10 s
    /// without them (a lost delivery must not hang the benchmark).
    pub(crate) fn wait_for(&self, total: usize) {
        let count = self.count.lock().unwrap();
        let (count, waited) = self
            .changed
            .wait_timeout_while(count, Duration::from_secs(10), |count| *count < total)
            .unwrap();
        assert!(
            !waited.timed_out(),
            "{} of {total} deliveries after 10 s",
            *count
        );
    }
}

/// Splits the sockets between `threads` reader threads. Each reads until
/// every one of its sockets has delivered `rounds` messages and returns,
/// per socket (in the order given), when each message was read.
///
/// `parse(socket, buffer)` is called after every read with the bytes of
/// that socket not yet consumed; it removes the complete messages from the
/// front of the buffer and returns how many of them count as deliveries.
pub(crate) fn read_rounds<P>(
    sockets: Vec<TcpStream>,
    threads: usize,
    rounds: usize,
    delivered: &Arc<Delivered>,
    parse: P,
) -> Vec<thread::JoinHandle<Vec<Vec<Instant>>>>
where
    P: FnMut(usize, &mut Vec<u8>) -> usize + Clone + Send + 'static,
{
    let threads = threads.max(1);
    let mut groups: Vec<Vec<(usize, TcpStream)>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, s) in sockets.into_iter().enumerate() {
        groups[i % threads].push((i, s));
    }
    groups
        .into_iter()
        .map(|group| {
            let delivered = delivered.clone();
            let parse = parse.clone();
            thread::spawn(move || read_group(group, rounds, &delivered, parse))
        })
        .collect()
}

/// Collects what the reader threads of [`read_rounds`] returned, in the
/// order of the sockets given to it.
pub(crate) fn join_rounds(
    handles: Vec<thread::JoinHandle<Vec<Vec<Instant>>>>,
) -> Vec<Vec<Instant>> {
    let threads = handles.len();
    let groups: Vec<Vec<Vec<Instant>>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let sockets: usize = groups.iter().map(Vec::len).sum();
    let mut iters: Vec<_> = groups.into_iter().map(Vec::into_iter).collect();
    (0..sockets)
        .map(|i| iters[i % threads].next().unwrap())
        .collect()
}

fn read_group<P>(
    group: Vec<(usize, TcpStream)>,
    rounds: usize,
    delivered: &Delivered,
    mut parse: P,
) -> Vec<Vec<Instant>>
where
    P: FnMut(usize, &mut Vec<u8>) -> usize,
{
    let mut poll = Poll::new().unwrap();
    let mut streams: Vec<(usize, mio::net::TcpStream)> = group
        .into_iter()
        .map(|(i, s)| {
            s.set_nonblocking(true).unwrap();
            (i, mio::net::TcpStream::from_std(s))
        })
        .collect();
    for (token, (_, s)) in streams.iter_mut().enumerate() {
        poll.registry()
            .register(s, Token(token), Interest::READABLE)
            .unwrap();
    }
    let mut pending: Vec<Vec<u8>> = vec![Vec::new(); streams.len()];
    let mut arrivals: Vec<Vec<Instant>> = vec![Vec::with_capacity(rounds); streams.len()];
    let mut done = 0;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    while done < streams.len() {
        poll.poll(&mut events, None).unwrap();
        let mut frames = 0;
        for event in &events {
            let token = event.token().0;
            let (socket, stream) = &mut streams[token];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => panic!("connection {socket} closed early"),
                    Ok(n) => {
                        let now = Instant::now();
                        pending[token].extend_from_slice(&buf[..n]);
                        let arrived = parse(*socket, &mut pending[token]);
                        for _ in 0..arrived {
                            arrivals[token].push(now);
                            frames += 1;
                            if arrivals[token].len() == rounds {
                                done += 1;
                            }
                        }
                        // A short read drained the socket (epoll(7)); the
                        // next edge comes with the next bytes.
                        if n < buf.len() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => panic!("read on connection {socket}: {e}"),
                }
            }
        }
        if frames > 0 {
            delivered.add(frames);
        }
    }
    arrivals
}

/// What one floor run measured.
pub(crate) struct Floor {
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    /// CPU time of this process (writers and readers together) per delivery.
    pub(crate) cpu_us: f64,
}

/// Writes `frame_len` bytes to each of `sockets` loopback connections,
/// `rounds` times, each round after the last delivery of the one before,
/// from `writers` threads; `readers` threads read. The p50 and p99 of
/// round start → arrival over all deliveries.
pub(crate) fn floor(
    sockets: usize,
    rounds: usize,
    frame_len: usize,
    writers: usize,
    readers: usize,
    cpu_seconds: fn() -> f64,
) -> Floor {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut sending: Vec<Vec<TcpStream>> = (0..writers.max(1)).map(|_| Vec::new()).collect();
    let mut receiving = Vec::with_capacity(sockets);
    for i in 0..sockets {
        let client = TcpStream::connect(addr).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        // As the sync server sets on the sockets it accepts.
        accepted.set_nodelay(true).unwrap();
        let writer = i % sending.len();
        sending[writer].push(accepted);
        receiving.push(client);
    }

    let delivered = Arc::new(Delivered::default());
    let readers = read_rounds(receiving, readers, rounds, &delivered, move |_, pending| {
        let frames = pending.len() / frame_len;
        pending.drain(..frames * frame_len);
        frames
    });
    let frame = vec![0xa5u8; frame_len];
    let (go, writer_threads): (Vec<_>, Vec<_>) = sending
        .into_iter()
        .map(|mut group| {
            let (tx, rx) = mpsc::channel::<()>();
            let frame = frame.clone();
            let handle = thread::spawn(move || {
                while rx.recv().is_ok() {
                    for s in &mut group {
                        s.write_all(&frame).unwrap();
                    }
                }
            });
            (tx, handle)
        })
        .unzip();

    let cpu_before = cpu_seconds();
    let mut sent = Vec::with_capacity(rounds);
    for round in 0..rounds {
        sent.push(Instant::now());
        for tx in &go {
            tx.send(()).unwrap();
        }
        delivered.wait_for(sockets * (round + 1));
    }
    let cpu_us = (cpu_seconds() - cpu_before) * 1e6 / (sockets * rounds) as f64;
    drop(go);
    for w in writer_threads {
        w.join().unwrap();
    }
    let mut samples = Vec::with_capacity(sockets * rounds);
    for arrivals in join_rounds(readers) {
        samples.extend(
            arrivals
                .iter()
                .zip(&sent)
                .map(|(at, s)| at.duration_since(*s)),
        );
    }
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    Floor {
        p50: pick(0.5),
        p99: pick(0.99),
        cpu_us,
    }
}
