//! Decodes arbitrary bytes as a frame and then as typed messages; whatever
//! decodes must re-encode and decode to the same value. Any panic, or an
//! allocation beyond libFuzzer's `-rss_limit_mb`, is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealbase_protocol::{
    CallResult, ClientRequest, Frame, Method, Notification, PullChunk, decode,
};

fuzz_target!(|bytes: &[u8]| {
    let Ok(frame) = decode(bytes) else { return };
    let encoded = frame.encode().expect("a decoded frame re-encodes");
    assert_eq!(decode(&encoded).expect("re-encoded frame decodes"), frame);

    match &frame {
        Frame::Request(raw) => {
            if let Ok(request) = ClientRequest::from_raw(raw) {
                let _ = request.validate();
                let again = request.to_raw(raw.id).expect("request re-encodes");
                assert_eq!(ClientRequest::from_raw(&again).expect("decodes"), request);
            }
        }
        Frame::Response(raw) => {
            if let Ok(result) = &raw.outcome {
                for &method in Method::ALL {
                    if let Ok(typed) = CallResult::from_raw(method, result) {
                        let again = typed.to_raw().expect("result re-encodes");
                        assert_eq!(CallResult::from_raw(method, &again).expect("decodes"), typed);
                    }
                }
            }
        }
        Frame::Notification(raw) => {
            if let Ok(notification) = Notification::from_raw(raw) {
                let again = notification.to_raw().expect("notification re-encodes");
                assert_eq!(Notification::from_raw(&again).expect("decodes"), notification);
            }
        }
        Frame::Chunk(raw) => {
            if let Ok(chunk) = PullChunk::from_raw(raw) {
                let again = chunk.to_raw(raw.id).expect("chunk re-encodes");
                assert_eq!(PullChunk::from_raw(&again).expect("decodes"), chunk);
            }
        }
    }
});
