import CEpoll
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Something woken by the event loop when its socket is ready.
protocol PostgresSocketWatcher: AnyObject, Sendable {
    func socketReady(readable: Bool, writable: Bool)
}

/// One thread in `epoll_wait` for every database socket. A DispatchSource costs two thread wake-ups
/// per answer (libdispatch's manager thread, then a queue's worker) before the waiting task is even
/// scheduled; here the thread that sees the socket ready reads the answer and resumes the task, so a
/// statement costs one. When many answers arrive together, one wake-up serves them all.
///
/// Registrations are keyed by a number never reused, not by the descriptor: after a descriptor is
/// closed its number can come back for another connection, and a stale event must not reach it.
final class PostgresEventLoop: Sendable {
    static let shared = PostgresEventLoop()

    private let epollDescriptor: Int32
    private let watchers = Mutex<[UInt64: any PostgresSocketWatcher]>([:])
    private let nextToken = Atomic<UInt64>(1)

    private init() {
        epollDescriptor = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollDescriptor >= 0 else { fatalError("epoll_create1 failed: errno \(errno)") }
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { context in
            guard let context else { return nil }
            Unmanaged<PostgresEventLoop>.fromOpaque(context).takeUnretainedValue().run()
        }, context)
        guard created == 0 else { fatalError("pthread_create failed: \(created)") }
        pthread_detach(thread)
    }

    /// Starts watching `descriptor` for `watcher`; the token names the registration from now on.
    func register(_ descriptor: Int32, _ watcher: any PostgresSocketWatcher, readable: Bool, writable: Bool) -> UInt64? {
        let token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
        watchers.withLock { $0[token] = watcher }
        guard control(EPOLL_CTL_ADD, descriptor, token, readable: readable, writable: writable) else {
            watchers.withLock { _ = $0.removeValue(forKey: token) }
            return nil
        }
        return token
    }

    /// Changes which readiness `descriptor` is watched for.
    @discardableResult
    func modify(_ descriptor: Int32, token: UInt64, readable: Bool, writable: Bool) -> Bool {
        control(EPOLL_CTL_MOD, descriptor, token, readable: readable, writable: writable)
    }

    /// Stops watching. `descriptor` is nil when it was already closed (the kernel then dropped it from
    /// the epoll set itself, and its number may already belong to someone else).
    func unregister(_ descriptor: Int32?, token: UInt64) {
        if let descriptor { _ = control(EPOLL_CTL_DEL, descriptor, token, readable: false, writable: false) }
        watchers.withLock { _ = $0.removeValue(forKey: token) }
    }

    private func control(_ operation: Int32, _ descriptor: Int32, _ token: UInt64, readable: Bool, writable: Bool) -> Bool {
        var event = epoll_event()
        event.events = (readable ? EPOLLIN.rawValue : 0) | (writable ? EPOLLOUT.rawValue : 0)
        event.data.u64 = token
        return epoll_ctl(epollDescriptor, operation, descriptor, &event) == 0
    }

    private func run() -> Never {
        let capacity = 64
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        let ready = UInt32(EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue)
        while true {
            let count = epoll_wait(epollDescriptor, events, Int32(capacity), -1)
            guard count > 0 else { continue }
            for index in 0..<Int(count) {
                let event = events[index]
                guard let watcher = watchers.withLock({ $0[event.data.u64] }) else { continue }
                watcher.socketReady(readable: event.events & ready != 0, writable: event.events & EPOLLOUT.rawValue != 0)
            }
        }
    }
}
