//! Virtual time for the sans-IO machines: one harness that runs a [`Call`] (or a bare
//! [`MediaSession`]) against a caller's script of datagrams, as fast as the machine allows.
//!
//! Time moves only to the next thing due: the next datagram of the script or the machine's
//! next timer, whichever comes first. Whatever the machine sends is recorded with the time it
//! went. A [`CallDrive`] stops when the call asks the directory something
//! ([`Query`]), so that the driver can answer it however it likes: `replay` and the tests
//! with [`crate::ivr::executor::execute`] over a real store, unit tests with a made-up answer.
//! Modelled on quinn-proto's test `Pair`, and used by `replay` and the tests alike.

use std::borrow::BorrowMut;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::call::{Call, CallEvent, SipOut};
use crate::media::session::MediaSession;
use crate::model::{Answer, Query};

/// What the caller's side does at a moment of the script.
#[derive(Debug, Clone)]
pub enum Input {
    /// An RTP datagram from `from`.
    Rtp {
        /// Its source.
        from: SocketAddr,
        /// The datagram.
        datagram: Bytes,
    },
    /// A key by SIP INFO (the request itself is the dialog's business, tested on its own).
    Info(char),
}

/// A sans-IO machine fed inputs and time.
pub trait Machine {
    /// When [`Machine::handle_timeout`] is next due.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Time passed.
    fn handle_timeout(&mut self, now: Instant);
    /// The caller did something.
    fn handle_input(&mut self, now: Instant, input: Input);
}

impl<M: Machine + ?Sized> Machine for &mut M {
    fn poll_timeout(&self) -> Option<Instant> {
        (**self).poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        (**self).handle_timeout(now);
    }
    fn handle_input(&mut self, now: Instant, input: Input) {
        (**self).handle_input(now, input);
    }
}

impl Machine for Call {
    fn poll_timeout(&self) -> Option<Instant> {
        Call::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Call::handle_timeout(self, now);
    }
    fn handle_input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Rtp { from, datagram } => self.handle_rtp(now, from, &datagram),
            Input::Info(key) => self.handle_info_key(now, key, None),
        }
    }
}

impl Machine for MediaSession {
    fn poll_timeout(&self) -> Option<Instant> {
        MediaSession::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        MediaSession::handle_timeout(self, now);
    }
    fn handle_input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Rtp { from, datagram } => self.handle_datagram(now, from, &datagram),
            Input::Info(key) => self.handle_info(now, key, None),
        }
    }
}

/// A script of RTP datagrams from one address, as [`Drive`] takes it.
pub fn rtp_script(
    from: SocketAddr,
    packets: impl IntoIterator<Item = (Duration, Bytes)>,
) -> Vec<(Duration, Input)> {
    packets
        .into_iter()
        .map(|(t, datagram)| (t, Input::Rtp { from, datagram }))
        .collect()
}

/// Runs a machine on virtual time against the caller's script.
#[derive(Debug)]
pub struct Drive<M> {
    /// The machine.
    pub machine: M,
    t0: Instant,
    now: Instant,
    script: VecDeque<(Instant, Input)>,
    end: Instant,
}

impl<M: Machine> Drive<M> {
    /// `machine` from `t0`, fed `script` (offsets from `t0`, in order), until `limit` after
    /// `t0`.
    pub fn new(
        machine: M,
        t0: Instant,
        script: impl IntoIterator<Item = (Duration, Input)>,
        limit: Duration,
    ) -> Drive<M> {
        let mut script: Vec<(Instant, Input)> =
            script.into_iter().map(|(t, i)| (t0 + t, i)).collect();
        script.sort_by_key(|(t, _)| *t);
        Drive {
            machine,
            t0,
            now: t0,
            script: script.into(),
            end: t0 + limit,
        }
    }

    /// The virtual time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// When the run started.
    pub fn t0(&self) -> Instant {
        self.t0
    }

    /// Whether the script has been played to its end.
    pub fn script_done(&self) -> bool {
        self.script.is_empty()
    }

    /// Moves to the next datagram or timer, whichever is first, and hands it to the machine;
    /// false (and nothing done) when neither comes before the end.
    pub fn step(&mut self) -> bool {
        let input = self.script.front().map(|(t, _)| *t);
        let timer = self.machine.poll_timeout();
        let Some(due) = [input, timer].into_iter().flatten().min() else {
            return false;
        };
        if due > self.end {
            return false;
        }
        self.now = self.now.max(due);
        if input == Some(due) {
            let (_, input) = self.script.pop_front().expect("peeked");
            self.machine.handle_input(self.now, input);
        } else {
            self.machine.handle_timeout(self.now);
        }
        true
    }
}

/// What a call sent and told, with when.
#[derive(Debug, Default)]
pub struct Record {
    /// SIP the call sent.
    pub sip: Vec<(Instant, SipOut)>,
    /// RTP the call sent: when, where, the datagram.
    pub rtp: Vec<(Instant, SocketAddr, Bytes)>,
    /// What happened.
    pub events: Vec<(Instant, CallEvent)>,
}

/// A call on virtual time: [`Drive`] plus the record of its outputs and its requests for the
/// directory. `C` is the call or a `&mut` to one (to look at it between runs).
#[derive(Debug)]
pub struct CallDrive<C = Call> {
    /// The call and the clock.
    pub drive: Drive<C>,
    /// Everything the call sent and told so far.
    pub record: Record,
}

impl<C: Machine + BorrowMut<Call>> CallDrive<C> {
    /// `call` from `t0`, the caller's `script`, until `limit`.
    pub fn new(
        call: C,
        t0: Instant,
        script: impl IntoIterator<Item = (Duration, Input)>,
        limit: Duration,
    ) -> CallDrive<C> {
        let mut d = CallDrive {
            drive: Drive::new(call, t0, script, limit),
            record: Record::default(),
        };
        d.collect();
        d
    }

    /// The call.
    pub fn call(&mut self) -> &mut Call {
        self.drive.machine.borrow_mut()
    }

    /// Runs until the call asks the directory something (answer with
    /// [`CallDrive::answer`]), ends, or the time runs out (`None`).
    pub fn run(&mut self) -> Option<Query> {
        loop {
            if let Some(request) = self.call().poll_request() {
                return Some(request);
            }
            if self.call().is_ended() || !self.drive.step() {
                return None;
            }
            self.collect();
        }
    }

    /// Runs to the end, answering every request with `answer`.
    pub fn run_to_end(&mut self, mut answer: impl FnMut(Query) -> Answer) {
        while let Some(request) = self.run() {
            let a = answer(request);
            self.answer(a);
        }
    }

    /// The directory's answer to the call's last request.
    pub fn answer(&mut self, answer: Answer) {
        let now = self.drive.now();
        self.call().handle_answer(now, answer);
        self.collect();
    }

    /// Moves the call's outputs into the record.
    pub fn collect(&mut self) {
        let now = self.drive.now();
        let call: &mut Call = self.drive.machine.borrow_mut();
        while let Some(out) = call.poll_sip() {
            self.record.sip.push((now, out));
        }
        while let Some((to, bytes, _)) = call.poll_rtp() {
            self.record.rtp.push((now, to, bytes));
        }
        while let Some(event) = call.poll_event() {
            self.record.events.push((now, event));
        }
    }
}
