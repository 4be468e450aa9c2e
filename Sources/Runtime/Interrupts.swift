import Foundation

/// Ctrl-C and SIGTERM stop a run cleanly: the running stage stops at the next
/// step and keeps its last complete epoch; nothing is marked done that is not.
public enum Interrupts {
    public static func install() {
        signal(SIGINT, handleStop)
        signal(SIGTERM, handleStop)
    }

    public static var requested: Bool { CtxStop.requested }
}

private func handleStop(_ signal: Int32) {
    CtxStop.requested = true
}
