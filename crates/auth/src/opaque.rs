//! The OPAQUE suite and its steps.
//!
//! Registration (three messages):
//! 1. client: [`client_registration_start`] → request
//! 2. server: [`server_registration_response`] → response
//! 3. client: [`client_registration_finish`] → upload + export key;
//!    server: [`server_registration_finish`] → [`PasswordFile`]
//!
//! Login (three messages):
//! 1. client: [`client_login_start`] → request
//! 2. server: [`server_login_start`] → response + [`ServerLoginState`] (kept
//!    by the server until the client answers)
//! 3. client: [`client_login_finish`] → finalization + export key;
//!    server: [`server_login_finish`] accepts or refuses it
//!
//! A login for an unknown user runs the same steps with no password file:
//! the server answers with a response of the same size and shape, derived
//! from its OPRF seed and the credential identifier so that repeated
//! attempts look like a real, stable account; the exchange then fails at the
//! last step exactly as a wrong password does.
//!
//! Stored formats ([`ServerKeys`], [`PasswordFile`], [`ServerLoginState`])
//! start with a version byte ([`FORMAT_VERSION`]). Messages are the
//! RFC 9807 encodings for this suite and are versioned by the API that
//! carries them.

use argon2::{Algorithm, Argon2, Params, Version};
use opaque_ke::errors::ProtocolError;
use opaque_ke::{
    CipherSuite, ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialFinalization, CredentialRequest,
    CredentialResponse, Identifiers, RegistrationRequest, RegistrationResponse, RegistrationUpload,
    Ristretto255, ServerLogin, ServerLoginParameters, ServerRegistration, ServerSetup, TripleDh,
};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

/// The suite: ristretto255 OPRF, TripleDH over ristretto255 with SHA-512,
/// Argon2id (see [`ksf`]) as the key stretching function.
#[derive(Debug, Clone, Copy)]
pub struct Suite;

impl CipherSuite for Suite {
    type OprfCs = Ristretto255;
    type KeyExchange = TripleDh<Ristretto255, sha2::Sha512>;
    type Ksf = Argon2<'static>;
}

/// Version byte of the stored formats in this module.
pub const FORMAT_VERSION: u8 = 1;

/// Context string both sides bind into the login transcript.
pub const CONTEXT: &[u8] = b"sealbase/v1/opaque";

/// Argon2id memory cost, KiB (19 MiB: OWASP's minimum for Argon2id, which a
/// browser's wasm runs in well under a second).
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id passes.
pub const ARGON2_ITERATIONS: u32 = 2;
/// Argon2id lanes (wasm runs one thread).
pub const ARGON2_LANES: u32 = 1;

/// Length of OPAQUE's export key (SHA-512 output).
pub const EXPORT_KEY_LEN: usize = 64;

/// Why an OPAQUE step failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpaqueError {
    /// A message or stored value could not be parsed (wrong length, not a
    /// valid group element, unknown version byte).
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The login did not authenticate: a wrong password, an unknown user,
    /// or a tampered message. Deliberately one case.
    #[error("authentication failed")]
    Authentication,
    /// The peer reflected the client's own blinded element.
    #[error("the server reflected the client's message")]
    Reflected,
    /// An internal failure of the primitives (e.g. Argon2 parameters).
    #[error("OPAQUE internal error: {0}")]
    Internal(String),
}

fn internal(e: ProtocolError) -> OpaqueError {
    match e {
        ProtocolError::InvalidLoginError => OpaqueError::Authentication,
        ProtocolError::ReflectedValueError => OpaqueError::Reflected,
        ProtocolError::SerializationError => OpaqueError::Malformed("message"),
        other => OpaqueError::Internal(other.to_string()),
    }
}

/// The key stretching function with this suite's parameters.
pub fn ksf() -> Result<Argon2<'static>, OpaqueError> {
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_LANES, None)
        .map_err(|e| OpaqueError::Internal(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Prefixes `body` with the version byte.
fn versioned(body: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(body.len() + 1));
    out.push(FORMAT_VERSION);
    out.extend_from_slice(body);
    out
}

/// The body after a known version byte.
fn unversioned<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a [u8], OpaqueError> {
    match bytes.split_first() {
        Some((&FORMAT_VERSION, body)) => Ok(body),
        _ => Err(OpaqueError::Malformed(what)),
    }
}

// ---------------------------------------------------------------------------
// Server

/// The server's long-term OPAQUE secrets: its key-exchange key pair and the
/// OPRF seed from which every user's OPRF key is derived. Losing them makes
/// every password file useless; leaking them enables offline guessing of
/// every password (through Argon2id).
pub struct ServerKeys(ServerSetup<Suite>);

impl ServerKeys {
    /// Fresh keys.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self(ServerSetup::<Suite>::new(rng))
    }

    /// `0x01 ‖ ServerSetup` (secret: store it like a private key).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        versioned(&self.0.serialize())
    }

    /// Parses [`ServerKeys::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OpaqueError> {
        let body = unversioned(bytes, "server keys")?;
        ServerSetup::<Suite>::deserialize(body)
            .map(Self)
            .map_err(|_| OpaqueError::Malformed("server keys"))
    }

    /// The server's public key (clients may pin it).
    pub fn public_key(&self) -> Vec<u8> {
        self.0.keypair().public().serialize().to_vec()
    }
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKeys").finish_non_exhaustive()
    }
}

/// A user's password file (RFC 9807's registration record): the client's
/// public key, masking key and envelope. Not secret on its own, but with
/// the [`ServerKeys`] it allows offline guessing, so it is stored like a
/// password hash.
#[derive(Clone)]
pub struct PasswordFile(ServerRegistration<Suite>);

impl PasswordFile {
    /// `0x01 ‖ record`.
    pub fn to_bytes(&self) -> Vec<u8> {
        versioned(&self.0.serialize()).to_vec()
    }

    /// Parses [`PasswordFile::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OpaqueError> {
        let body = unversioned(bytes, "password file")?;
        ServerRegistration::<Suite>::deserialize(body)
            .map(Self)
            .map_err(|_| OpaqueError::Malformed("password file"))
    }
}

impl std::fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordFile").finish_non_exhaustive()
    }
}

/// Registration step 2: the server's response to the client's request.
/// `credential_id` names the account (the same bytes at login).
pub fn server_registration_response(
    keys: &ServerKeys,
    request: &[u8],
    credential_id: &[u8],
) -> Result<Vec<u8>, OpaqueError> {
    let request = RegistrationRequest::<Suite>::deserialize(request)
        .map_err(|_| OpaqueError::Malformed("registration request"))?;
    let started =
        ServerRegistration::<Suite>::start(&keys.0, request, credential_id).map_err(internal)?;
    Ok(started.message.serialize().to_vec())
}

/// Registration step 3 (server): the password file from the client's upload.
pub fn server_registration_finish(upload: &[u8]) -> Result<PasswordFile, OpaqueError> {
    let upload = RegistrationUpload::<Suite>::deserialize(upload)
        .map_err(|_| OpaqueError::Malformed("registration upload"))?;
    Ok(PasswordFile(ServerRegistration::finish(upload)))
}

/// What the server keeps between login steps 2 and 3.
pub struct ServerLoginState(ServerLogin<Suite>);

impl ServerLoginState {
    /// `0x01 ‖ state` (secret until the login ends: it holds the session's
    /// key-exchange state).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        versioned(&self.0.serialize())
    }

    /// Parses [`ServerLoginState::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OpaqueError> {
        let body = unversioned(bytes, "login state")?;
        ServerLogin::<Suite>::deserialize(body)
            .map(Self)
            .map_err(|_| OpaqueError::Malformed("login state"))
    }
}

impl std::fmt::Debug for ServerLoginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerLoginState").finish_non_exhaustive()
    }
}

/// Login step 2: the server's response. `file` is `None` for an unknown
/// user; the response is then indistinguishable from a real one.
pub fn server_login_start(
    rng: &mut impl CryptoRngCore,
    keys: &ServerKeys,
    file: Option<&PasswordFile>,
    request: &[u8],
    credential_id: &[u8],
) -> Result<(Vec<u8>, ServerLoginState), OpaqueError> {
    let request = CredentialRequest::<Suite>::deserialize(request)
        .map_err(|_| OpaqueError::Malformed("login request"))?;
    let started = ServerLogin::start(
        rng,
        &keys.0,
        file.map(|f| f.0.clone()),
        request,
        credential_id,
        server_parameters(),
    )
    .map_err(internal)?;
    Ok((
        started.message.serialize().to_vec(),
        ServerLoginState(started.state),
    ))
}

/// Login step 3 (server): `Ok` exactly when the client proved knowledge of
/// the registered password.
pub fn server_login_finish(
    state: ServerLoginState,
    finalization: &[u8],
) -> Result<(), OpaqueError> {
    let finalization = CredentialFinalization::<Suite>::deserialize(finalization)
        .map_err(|_| OpaqueError::Malformed("login finalization"))?;
    state
        .0
        .finish(finalization, server_parameters())
        .map(|_| ())
        .map_err(internal)
}

fn server_parameters() -> ServerLoginParameters<'static, 'static> {
    ServerLoginParameters {
        context: Some(CONTEXT),
        identifiers: Identifiers::default(),
    }
}

// ---------------------------------------------------------------------------
// Client

/// OPAQUE's export key: known only to a client that knows the password.
/// `sealbase_crypto::kdf::ark_wrapping_key_from_export_key` turns it into
/// the key that wraps the account root key.
pub type ExportKey = Zeroizing<Vec<u8>>;

/// What the client keeps between registration steps 1 and 3.
pub struct ClientRegistrationState(ClientRegistration<Suite>);

impl std::fmt::Debug for ClientRegistrationState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRegistrationState")
            .finish_non_exhaustive()
    }
}

/// Registration step 1: the request to send, and the state to keep.
pub fn client_registration_start(
    rng: &mut impl CryptoRngCore,
    password: &[u8],
) -> Result<(Vec<u8>, ClientRegistrationState), OpaqueError> {
    let started = ClientRegistration::<Suite>::start(rng, password).map_err(internal)?;
    Ok((
        started.message.serialize().to_vec(),
        ClientRegistrationState(started.state),
    ))
}

/// Registration step 3 (client): the upload to send, and the export key.
/// Runs Argon2id.
pub fn client_registration_finish(
    rng: &mut impl CryptoRngCore,
    state: ClientRegistrationState,
    password: &[u8],
    response: &[u8],
) -> Result<(Vec<u8>, ExportKey), OpaqueError> {
    let response = RegistrationResponse::<Suite>::deserialize(response)
        .map_err(|_| OpaqueError::Malformed("registration response"))?;
    let ksf = ksf()?;
    let finished = state
        .0
        .finish(
            rng,
            password,
            response,
            ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&ksf)),
        )
        .map_err(internal)?;
    Ok((
        finished.message.serialize().to_vec(),
        Zeroizing::new(finished.export_key.to_vec()),
    ))
}

/// What the client keeps between login steps 1 and 3.
pub struct ClientLoginState(ClientLogin<Suite>);

impl std::fmt::Debug for ClientLoginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientLoginState").finish_non_exhaustive()
    }
}

/// Login step 1: the request to send, and the state to keep.
pub fn client_login_start(
    rng: &mut impl CryptoRngCore,
    password: &[u8],
) -> Result<(Vec<u8>, ClientLoginState), OpaqueError> {
    let started = ClientLogin::<Suite>::start(rng, password).map_err(internal)?;
    Ok((
        started.message.serialize().to_vec(),
        ClientLoginState(started.state),
    ))
}

/// The client's result of a login that authenticated the server.
pub struct LoginFinish {
    /// Login step 3's message, for the server.
    pub finalization: Vec<u8>,
    /// OPAQUE's export key (the same as at registration).
    pub export_key: ExportKey,
    /// The server's public key, for pinning.
    pub server_public_key: Vec<u8>,
}

impl std::fmt::Debug for LoginFinish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginFinish")
            .field("server_public_key", &self.server_public_key)
            .finish_non_exhaustive()
    }
}

/// Login step 3 (client). Runs Argon2id. Fails with
/// [`OpaqueError::Authentication`] on a wrong password or an unknown user
/// (the client cannot tell them apart either).
pub fn client_login_finish(
    rng: &mut impl CryptoRngCore,
    state: ClientLoginState,
    password: &[u8],
    response: &[u8],
) -> Result<LoginFinish, OpaqueError> {
    let response = CredentialResponse::<Suite>::deserialize(response)
        .map_err(|_| OpaqueError::Malformed("login response"))?;
    let ksf = ksf()?;
    let finished = state
        .0
        .finish(
            rng,
            password,
            response,
            ClientLoginFinishParameters::new(Some(CONTEXT), Identifiers::default(), Some(&ksf)),
        )
        .map_err(internal)?;
    Ok(LoginFinish {
        finalization: finished.message.serialize().to_vec(),
        export_key: Zeroizing::new(finished.export_key.to_vec()),
        server_public_key: finished.server_s_pk.serialize().to_vec(),
    })
}
