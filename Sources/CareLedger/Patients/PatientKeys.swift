import Crypto

/// The key hierarchy for data at rest. A master key (from a file, never the database) wraps one
/// data key per patient, which seals that patient's resources; destroying a data key makes the
/// patient's content unreadable for everyone (erasure) without touching the ledger. A separate key
/// derived from the master key makes blind indexes of identifiers.
public struct PatientKeys: Sendable {
    private let masterKey: [UInt8]
    private let indexKey: [UInt8]

    public init(masterKey: [UInt8]) throws(CryptoError) {
        guard masterKey.count == AESGCM.keySize else { throw CryptoError("the master key must be 32 bytes") }
        self.masterKey = masterKey
        indexKey = HMACSHA256.authenticationCode(Array("careledger/blind-index/v1".utf8), key: masterKey)
    }

    /// A fresh data key for a patient, and its wrapped form to store.
    func newDataKey(patientId: String) throws(CryptoError) -> (key: [UInt8], wrapped: [UInt8]) {
        let key = SecureRandom.bytes(AESGCM.keySize)
        return (key, try AESGCM.seal(key, key: masterKey, authenticating: Array("patient-key:\(patientId)".utf8)))
    }

    func unwrap(_ wrapped: [UInt8], patientId: String) throws(CryptoError) -> [UInt8] {
        try AESGCM.open(wrapped, key: masterKey, authenticating: Array("patient-key:\(patientId)".utf8))
    }

    /// The keyed hash an identifier is found by: the same system and value always give the same
    /// index, and without the master key the index reveals neither.
    func blindIndex(system: String, value: String) -> [UInt8] {
        HMACSHA256.authenticationCode(Array((system + "|" + value).utf8), key: indexKey)
    }
}

extension PatientKeys {
    /// The patient's data key, unwrapped; an erased patient's is gone (410 `erased`).
    func dataKey(of patientId: String, on runner: some QueryRunner) async throws -> [UInt8] {
        guard let wrapped = try await PatientStore().patient(patientId, on: runner)?.wrappedDataKey else { throw DomainError.erased }
        return try unwrap(wrapped, patientId: patientId)
    }

    /// The data keys of several patients, read in one statement; any erased or unknown patient is 410 `erased`.
    func dataKeys(of patientIds: Set<String>, on runner: some QueryRunner) async throws -> [String: [UInt8]] {
        let wrapped = try await PatientStore().wrappedDataKeys(Array(patientIds), on: runner)
        var keys: [String: [UInt8]] = [:]
        for patientId in patientIds {
            guard let found = wrapped[patientId], let key = found else { throw DomainError.erased }
            keys[patientId] = try unwrap(key, patientId: patientId)
        }
        return keys
    }
}
