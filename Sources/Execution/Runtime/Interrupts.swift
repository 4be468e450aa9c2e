import Foundation

/// Ctrl-C and SIGTERM stop a run cleanly: the running stage stops at the next
/// step and keeps its last complete epoch; nothing is marked done that is not.
public enum Interrupts {
    public static func install() {
        signal(SIGINT, handleStop)
        signal(SIGTERM, handleStop)
        // A parent may have started us with these signals blocked (test runners do): unblock them.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    public static var requested: Bool { StopRequest.isSet }
}

/// Only an atomic store: the one thing a signal handler may safely do here.
private func handleStop(_ signal: Int32) {
    StopRequest.set()
}
