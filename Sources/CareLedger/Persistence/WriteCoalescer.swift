import IOLoop
import Synchronization

/// Group commit for one kind of write: requests that arrive while a batch is being written wait and
/// go together in the next one, as one statement and one commit. Under load that is one WAL flush,
/// one round trip and one executor start-up for many writes instead of one each; alone, a write goes
/// out at once, so nothing waits on a timer.
///
/// Each write stays atomic: a batch commits or fails whole. When it fails for anything but the
/// database being unavailable, its writes are retried one at a time, so one bad write (a raced
/// idempotency key, a vanished row) fails alone and the others still succeed.
final class WriteCoalescer<Item: Sendable, Output: Sendable>: Sendable {
    typealias Writer = @Sendable ([Item]) async throws -> [Output]

    private struct Waiter {
        let item: Item
        let continuation: CheckedContinuation<Output, any Error>
    }

    private struct State {
        var queued: [Waiter] = []
        var writers = 0
    }

    private let state = Mutex(State())
    private let maxBatch: Int
    private let maxWriters: Int
    private let write: Writer
    private let failsEveryone: @Sendable (any Error) -> Bool

    /// `write` gets the items of one batch and answers one output per item, in order.
    /// `maxWriters` batches are written at a time (one filling while another commits keeps the CPU
    /// and the disk both busy); `failsEveryone` picks errors not worth retrying item by item.
    init(maxBatch: Int = 64, maxWriters: Int = 1, failsEveryone: @escaping @Sendable (any Error) -> Bool, write: @escaping Writer) {
        self.maxBatch = maxBatch
        self.maxWriters = maxWriters
        self.failsEveryone = failsEveryone
        self.write = write
    }

    /// Writes `item` in the next batch and returns its output once that batch has committed.
    func submit(_ item: Item) async throws -> Output {
        try await withCheckedThrowingContinuation { continuation in
            let becomeWriter = state.withLock { state -> Bool in
                state.queued.append(Waiter(item: item, continuation: continuation))
                guard state.writers < maxWriters else { return false }
                state.writers += 1
                return true
            }
            // On the caller's event loop: an unstructured task does not inherit the caller's executor
            // preference, and on the global executor every statement of the batch would cost a hop.
            if becomeWriter { Task(executorPreference: IOEventLoop.current) { await self.writeBatches() } }
        }
    }

    /// Writes batches until nothing is queued.
    private func writeBatches() async {
        while let batch = nextBatch() {
            do {
                let outputs = try await written(batch.map { $0.item })
                for (waiter, output) in zip(batch, outputs) { waiter.continuation.resume(returning: output) }
            } catch where batch.count > 1 && !failsEveryone(error) {
                for waiter in batch {
                    do {
                        waiter.continuation.resume(returning: try await written([waiter.item])[0])
                    } catch {
                        waiter.continuation.resume(throwing: error)
                    }
                }
            } catch {
                for waiter in batch { waiter.continuation.resume(throwing: error) }
            }
        }
    }

    /// `write`'s outputs, one per item, or an error if the writer broke that promise.
    private func written(_ items: [Item]) async throws -> [Output] {
        let outputs = try await write(items)
        guard outputs.count == items.count else { throw CoalescerError.outputCountMismatch }
        return outputs
    }

    private func nextBatch() -> [Waiter]? {
        state.withLock { state in
            guard !state.queued.isEmpty else {
                state.writers -= 1
                return nil
            }
            let count = min(maxBatch, state.queued.count)
            defer { state.queued.removeFirst(count) }
            return Array(state.queued.prefix(count))
        }
    }
}

private enum CoalescerError: Error {
    case outputCountMismatch
}
