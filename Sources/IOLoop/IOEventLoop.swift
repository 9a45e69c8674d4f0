import CEpoll
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Something woken by an event loop when its socket is ready.
public protocol IOWatcher: AnyObject, Sendable {
    func socketReady(readable: Bool, writable: Bool)
}

/// A thread in `epoll_wait` for a share of the process's sockets (HTTP clients and database
/// connections alike), one per core. A DispatchSource costs two thread wake-ups per event
/// (libdispatch's manager thread, then a queue's worker) before any work is even scheduled; here the
/// thread that sees the socket ready does the work, and when many sockets are ready together one
/// wake-up serves them all.
///
/// Each loop is also a `TaskExecutor`. A task that prefers it (`withTaskExecutorPreference`,
/// `Task(executorPreference:)`) runs on the loop's thread. A request handler started by the loop that
/// read its request, waiting on a database connection watched by the same loop, is then read, run,
/// resumed and answered without leaving the thread, as in pgbench's client loop. Any other task is
/// resumed on its own executor, at the price of one thread hop per wait.
///
/// Registrations are keyed by a number never reused, not by the descriptor: after a descriptor is
/// closed its number can come back for another connection, and a stale event must not reach it.
public final class IOEventLoop: TaskExecutor, Sendable {
    /// One loop per CPU the process may use (at most 8), each pinned to its CPU. The scheduler left to
    /// itself kept waking each backend on the other core than the loop that wrote to it, and a
    /// cross-core wake-up costs an interrupt (dearer still in a VM): pinned loops measured 116–127k
    /// `SELECT 1`/s at 16 tasks against 100–108k unpinned (Benchmarks/RESULTS.md).
    public static let all: [IOEventLoop] = {
        let allowed = careledger_allowed_cpus()
        var cpus = (0..<UInt(UInt.bitWidth)).filter { allowed & (1 << $0) != 0 }.map { Int32($0) }
        if cpus.isEmpty {
            cpus = Array(repeating: -1, count: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        }
        return cpus.prefix(8).enumerated().map { IOEventLoop(index: $0.offset, cpu: $0.element) }
    }()
    private static let nextIndex = Atomic<Int>(0)
    /// Each loop's thread points this at its loop, so `current` costs one lookup.
    private static let currentKey: pthread_key_t = {
        var key = pthread_key_t()
        guard pthread_key_create(&key, nil) == 0 else { fatalError("pthread_key_create failed") }
        return key
    }()

    /// The loops in turn, for spreading tasks and connections across cores.
    public static func next() -> IOEventLoop {
        all[nextIndex.wrappingAdd(1, ordering: .relaxed).oldValue % all.count]
    }

    /// The loop whose thread runs the caller, if any.
    public static var current: IOEventLoop? {
        pthread_getspecific(currentKey).map { Unmanaged<IOEventLoop>.fromOpaque($0).takeUnretainedValue() }
    }

    private enum Work {
        case job(UnownedJob)
        case closure(@Sendable () -> Void)
    }

    private struct JobQueue {
        var jobs: [Work] = []
        /// The loop found nothing to run and is (about to be) blocked in `epoll_wait`: an enqueue from
        /// another thread must wake it.
        var sleeping = false
    }

    /// The loop's place in `all`.
    public let index: Int
    /// The CPU the thread is pinned to, or -1.
    private let cpu: Int32
    private let epollDescriptor: Int32
    /// Readable while work waits for a sleeping loop; registered under token 0.
    private let wakeDescriptor: Int32
    private let queue = Mutex(JobQueue())
    private let watchers = Mutex<[UInt64: any IOWatcher]>([:])
    private let nextToken = Atomic<UInt64>(1)

    private init(index: Int, cpu: Int32) {
        self.index = index
        self.cpu = cpu
        epollDescriptor = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeDescriptor = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard epollDescriptor >= 0, wakeDescriptor >= 0 else { fatalError("epoll/eventfd setup failed: errno \(errno)") }
        var wake = epoll_event()
        wake.events = EPOLLIN.rawValue
        wake.data.u64 = 0
        guard epoll_ctl(epollDescriptor, EPOLL_CTL_ADD, wakeDescriptor, &wake) == 0 else {
            fatalError("epoll_ctl failed: errno \(errno)")
        }
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { context in
            guard let context else { return nil }
            Unmanaged<IOEventLoop>.fromOpaque(context).takeUnretainedValue().run()
        }, context)
        guard created == 0 else { fatalError("pthread_create failed: \(created)") }
        pthread_detach(thread)
    }

    // MARK: TaskExecutor

    public func enqueue(_ job: consuming ExecutorJob) {
        submit(.job(UnownedJob(job)))
    }

    /// Runs `work` on the loop's thread, after the work already queued.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        submit(.closure(work))
    }

    private func submit(_ work: Work) {
        let wake = queue.withLock { queue -> Bool in
            queue.jobs.append(work)
            defer { queue.sleeping = false }
            return queue.sleeping
        }
        guard wake else { return }
        var one: UInt64 = 1
        _ = write(wakeDescriptor, &one, MemoryLayout<UInt64>.size)
    }

    // MARK: Sockets

    /// Starts watching `descriptor` for `watcher`; the token names the registration from now on.
    public func register(_ descriptor: Int32, _ watcher: any IOWatcher, readable: Bool, writable: Bool) -> UInt64? {
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
    public func modify(_ descriptor: Int32, token: UInt64, readable: Bool, writable: Bool) -> Bool {
        control(EPOLL_CTL_MOD, descriptor, token, readable: readable, writable: writable)
    }

    /// Stops watching. `descriptor` is nil when it was already closed (the kernel then dropped it from
    /// the epoll set itself, and its number may already belong to someone else).
    public func unregister(_ descriptor: Int32?, token: UInt64) {
        if let descriptor { _ = control(EPOLL_CTL_DEL, descriptor, token, readable: false, writable: false) }
        watchers.withLock { _ = $0.removeValue(forKey: token) }
    }

    private func control(_ operation: Int32, _ descriptor: Int32, _ token: UInt64, readable: Bool, writable: Bool) -> Bool {
        var event = epoll_event()
        event.events = (readable ? EPOLLIN.rawValue : 0) | (writable ? EPOLLOUT.rawValue : 0)
        event.data.u64 = token
        return epoll_ctl(epollDescriptor, operation, descriptor, &event) == 0
    }

    // MARK: The thread

    /// Runs queued jobs, then handles socket events, waiting in `epoll_wait` only when no job is left.
    private func run() -> Never {
        pthread_setspecific(Self.currentKey, Unmanaged.passUnretained(self).toOpaque())
        // Unpinned is only slower, so a refusal is not an error.
        if cpu >= 0 { _ = careledger_pin_thread(cpu) }
        let capacity = 64
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        let ready = UInt32(EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue)
        let executor = asUnownedTaskExecutor()
        // Two buffers swapped with the queue's, so taking the jobs allocates nothing.
        var running: [Work] = []
        while true {
            running.removeAll(keepingCapacity: true)
            queue.withLock { queue in
                swap(&running, &queue.jobs)
                queue.sleeping = running.isEmpty
            }
            for work in running {
                switch work {
                case .job(let job): job.runSynchronously(on: executor)
                case .closure(let closure): closure()
                }
            }
            let count = epoll_wait(epollDescriptor, events, Int32(capacity), running.isEmpty ? -1 : 0)
            if running.isEmpty { queue.withLock { $0.sleeping = false } }
            guard count > 0 else { continue }
            for index in 0..<Int(count) {
                let event = events[index]
                guard event.data.u64 != 0 else {
                    var value: UInt64 = 0
                    _ = read(wakeDescriptor, &value, MemoryLayout<UInt64>.size)
                    continue
                }
                guard let watcher = watchers.withLock({ $0[event.data.u64] }) else { continue }
                watcher.socketReady(readable: event.events & ready != 0, writable: event.events & EPOLLOUT.rawValue != 0)
            }
        }
    }
}
