//! OPAQUE registration and login through the byte-level steps, as the
//! accounts server and its clients run them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealbase_auth::opaque::{
    self, FORMAT_VERSION, OpaqueError, PasswordFile, ServerKeys, ServerLoginState,
};
use sealbase_crypto::{AccountRootKey, kdf, unwrap_ark, wrap_ark};
use sha2::{Digest, Sha256};

const ALICE: &[u8] = b"alice";
const PASSWORD: &[u8] = b"correct horse battery staple";

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Registers `password` for `id`: the password file and the export key.
fn register(
    rng: &mut ChaCha20Rng,
    keys: &ServerKeys,
    id: &[u8],
    password: &[u8],
) -> (PasswordFile, opaque::ExportKey) {
    let (request, state) = opaque::client_registration_start(rng, password).unwrap();
    let response = opaque::server_registration_response(keys, &request, id).unwrap();
    let (upload, export_key) =
        opaque::client_registration_finish(rng, state, password, &response).unwrap();
    (
        opaque::server_registration_finish(&upload).unwrap(),
        export_key,
    )
}

/// Runs a login; the server's state crosses its storage format between the
/// two requests, as it does in the accounts server.
fn login(
    rng: &mut ChaCha20Rng,
    keys: &ServerKeys,
    file: Option<&PasswordFile>,
    id: &[u8],
    password: &[u8],
) -> Result<opaque::LoginFinish, OpaqueError> {
    let (request, client) = opaque::client_login_start(rng, password).unwrap();
    let (response, server) = opaque::server_login_start(rng, keys, file, &request, id).unwrap();
    let stored = server.to_bytes();
    let finished = opaque::client_login_finish(rng, client, password, &response)?;
    let server = ServerLoginState::from_bytes(&stored).unwrap();
    opaque::server_login_finish(server, &finished.finalization)?;
    Ok(finished)
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn register_then_login_yields_the_same_export_key() {
    let mut rng = rng(1);
    let keys = ServerKeys::generate(&mut rng);
    let (file, registered) = register(&mut rng, &keys, ALICE, PASSWORD);
    // The file survives its storage format.
    let file = PasswordFile::from_bytes(&file.to_bytes()).unwrap();
    let finished = login(&mut rng, &keys, Some(&file), ALICE, PASSWORD).unwrap();
    assert_eq!(finished.export_key.len(), opaque::EXPORT_KEY_LEN);
    assert_eq!(*finished.export_key, *registered);
    assert_eq!(finished.server_public_key, keys.public_key());

    // What the export key is for: ARK wrapped at signup opens at login.
    let ark = AccountRootKey::generate(&mut rng);
    let wrapped = wrap_ark(
        &kdf::ark_wrapping_key_from_export_key(&registered),
        &ark,
        &mut rng,
    );
    let opened = unwrap_ark(
        &kdf::ark_wrapping_key_from_export_key(&finished.export_key),
        &wrapped,
    )
    .unwrap();
    assert_eq!(opened.as_bytes(), ark.as_bytes());
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn a_wrong_password_fails_on_the_client() {
    let mut rng = rng(2);
    let keys = ServerKeys::generate(&mut rng);
    let (file, _) = register(&mut rng, &keys, ALICE, PASSWORD);
    let err = login(
        &mut rng,
        &keys,
        Some(&file),
        ALICE,
        b"correct horse battery stapler",
    );
    assert_eq!(err.unwrap_err(), OpaqueError::Authentication);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn an_unknown_user_gets_a_response_like_a_real_one() {
    let mut rng = rng(3);
    let keys = ServerKeys::generate(&mut rng);
    let (file, _) = register(&mut rng, &keys, ALICE, PASSWORD);

    let (request, _) = opaque::client_login_start(&mut rng, PASSWORD).unwrap();
    let (real, _) =
        opaque::server_login_start(&mut rng, &keys, Some(&file), &request, ALICE).unwrap();
    let (fake, _) =
        opaque::server_login_start(&mut rng, &keys, None, &request, b"mallory").unwrap();
    assert_eq!(real.len(), fake.len());
    assert_ne!(real, fake);

    // The exchange then fails exactly as a wrong password does.
    let err = login(&mut rng, &keys, None, b"mallory", PASSWORD).unwrap_err();
    assert_eq!(err, OpaqueError::Authentication);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn a_password_file_only_answers_for_its_own_account() {
    // The OPRF key depends on the credential identifier: Alice's file under
    // Bob's identifier does not open with Alice's password.
    let mut rng = rng(4);
    let keys = ServerKeys::generate(&mut rng);
    let (file, _) = register(&mut rng, &keys, ALICE, PASSWORD);
    let err = login(&mut rng, &keys, Some(&file), b"bob", PASSWORD).unwrap_err();
    assert_eq!(err, OpaqueError::Authentication);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn another_servers_keys_do_not_log_in() {
    let mut rng = rng(5);
    let keys = ServerKeys::generate(&mut rng);
    let other = ServerKeys::generate(&mut rng);
    let (file, _) = register(&mut rng, &keys, ALICE, PASSWORD);
    let err = login(&mut rng, &other, Some(&file), ALICE, PASSWORD).unwrap_err();
    assert_eq!(err, OpaqueError::Authentication);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn a_tampered_finalization_is_refused_by_the_server() {
    let mut rng = rng(6);
    let keys = ServerKeys::generate(&mut rng);
    let (file, _) = register(&mut rng, &keys, ALICE, PASSWORD);
    let (request, client) = opaque::client_login_start(&mut rng, PASSWORD).unwrap();
    let (response, server) =
        opaque::server_login_start(&mut rng, &keys, Some(&file), &request, ALICE).unwrap();
    let mut finished = opaque::client_login_finish(&mut rng, client, PASSWORD, &response).unwrap();
    finished.finalization[0] ^= 1;
    assert_eq!(
        opaque::server_login_finish(server, &finished.finalization).unwrap_err(),
        OpaqueError::Authentication
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn a_tampered_response_is_refused_by_the_client() {
    let mut rng = rng(7);
    let keys = ServerKeys::generate(&mut rng);
    let (file, _) = register(&mut rng, &keys, ALICE, PASSWORD);
    let (request, _) = opaque::client_login_start(&mut rng, PASSWORD).unwrap();
    let (response, _) =
        opaque::server_login_start(&mut rng, &keys, Some(&file), &request, ALICE).unwrap();
    // Flip one bit in each region of the response (evaluated element,
    // masking nonce, masked response, server nonce, key share, MAC).
    for at in (0..response.len()).step_by(37) {
        let (_, client) = opaque::client_login_start(&mut rng, PASSWORD).unwrap();
        let mut bad = response.clone();
        bad[at] ^= 0x40;
        let err = opaque::client_login_finish(&mut rng, client, PASSWORD, &bad).unwrap_err();
        assert!(
            matches!(err, OpaqueError::Authentication | OpaqueError::Malformed(_)),
            "byte {at}: {err:?}"
        );
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn malformed_input_is_an_error_not_a_panic() {
    let mut rng = rng(8);
    let keys = ServerKeys::generate(&mut rng);
    let (request, client) = opaque::client_registration_start(&mut rng, PASSWORD).unwrap();
    let response = opaque::server_registration_response(&keys, &request, ALICE).unwrap();
    let (upload, _) =
        opaque::client_registration_finish(&mut rng, client, PASSWORD, &response).unwrap();
    let (login_request, _) = opaque::client_login_start(&mut rng, PASSWORD).unwrap();

    for len in [0usize, 1, 31, 33, 200] {
        let garbage = vec![0xffu8; len];
        assert!(matches!(
            opaque::server_registration_response(&keys, &garbage, ALICE),
            Err(OpaqueError::Malformed(_))
        ));
        assert!(matches!(
            opaque::server_registration_finish(&garbage),
            Err(OpaqueError::Malformed(_))
        ));
        assert!(matches!(
            opaque::server_login_start(&mut rng, &keys, None, &garbage, ALICE),
            Err(OpaqueError::Malformed(_))
        ));
        let (_, client) = opaque::client_login_start(&mut rng, PASSWORD).unwrap();
        assert!(matches!(
            opaque::client_login_finish(&mut rng, client, PASSWORD, &garbage),
            Err(OpaqueError::Malformed(_))
        ));
        let (_, client) = opaque::client_registration_start(&mut rng, PASSWORD).unwrap();
        assert!(matches!(
            opaque::client_registration_finish(&mut rng, client, PASSWORD, &garbage),
            Err(OpaqueError::Malformed(_))
        ));
    }
    // Truncations of valid messages.
    for cut in [1usize, 16] {
        assert!(
            opaque::server_registration_finish(&upload[..upload.len() - cut]).is_err(),
            "upload cut by {cut}"
        );
        assert!(
            opaque::server_login_start(
                &mut rng,
                &keys,
                None,
                &login_request[..login_request.len() - cut],
                ALICE
            )
            .is_err(),
            "login request cut by {cut}"
        );
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn stored_formats_carry_their_version_byte() {
    let mut rng = rng(9);
    let keys = ServerKeys::generate(&mut rng);
    let (file, _) = register(&mut rng, &keys, ALICE, PASSWORD);
    let (request, _) = opaque::client_login_start(&mut rng, PASSWORD).unwrap();
    let (_, state) =
        opaque::server_login_start(&mut rng, &keys, Some(&file), &request, ALICE).unwrap();

    let stored: [(&str, Vec<u8>); 3] = [
        ("keys", keys.to_bytes().to_vec()),
        ("file", file.to_bytes()),
        ("state", state.to_bytes().to_vec()),
    ];
    for (what, bytes) in stored {
        assert_eq!(bytes[0], FORMAT_VERSION, "{what}");
        let mut other = bytes.clone();
        other[0] = 2;
        let refused = match what {
            "keys" => ServerKeys::from_bytes(&other).is_err(),
            "file" => PasswordFile::from_bytes(&other).is_err(),
            _ => ServerLoginState::from_bytes(&other).is_err(),
        };
        assert!(refused, "{what} with version 2");
    }
    assert_eq!(
        ServerKeys::from_bytes(&keys.to_bytes())
            .unwrap()
            .public_key(),
        keys.public_key()
    );
}

/// Pins the suite: the same seeded randomness must give the same server
/// keys, password file and export key. A change of suite, Argon2id
/// parameters, context or encoding breaks every stored password file, so it
/// must show up here first.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn vectors() {
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("vectors/opaque.json")).unwrap();
    let hex_sha256 = |bytes: &[u8]| hex::encode(Sha256::digest(bytes));

    let mut rng = rng(u64::from_str_radix(vectors["seed"].as_str().unwrap(), 16).unwrap());
    let keys = ServerKeys::generate(&mut rng);
    let (file, export_key) = register(&mut rng, &keys, ALICE, PASSWORD);
    let got = serde_json::json!({
        "seed": vectors["seed"],
        "credential_id": String::from_utf8_lossy(ALICE),
        "password": String::from_utf8_lossy(PASSWORD),
        "argon2id": {
            "memory_kib": opaque::ARGON2_MEMORY_KIB,
            "iterations": opaque::ARGON2_ITERATIONS,
            "lanes": opaque::ARGON2_LANES,
        },
        "server_public_key": hex::encode(keys.public_key()),
        "server_keys_sha256": hex_sha256(&keys.to_bytes()),
        "password_file": hex::encode(file.to_bytes()),
        "export_key": hex::encode(&*export_key),
    });
    assert_eq!(
        got,
        vectors,
        "got:\n{}",
        serde_json::to_string_pretty(&got).unwrap()
    );
}
