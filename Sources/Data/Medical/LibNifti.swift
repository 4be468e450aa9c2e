import CNifti
import Foundation
import Synchronization

/// libnifti reports problems by printing `** ERROR ...` to stderr and returning NULL.
/// Its calls run here with stderr captured (and its debug level at 0), so that what
/// it says becomes part of our error instead of a stray line beside it.
enum LibNifti {
    /// One capture at a time: stderr is a process-wide file descriptor.
    private static let lock = Mutex(false)

    /// Runs `body` with file descriptor 2 redirected to a temporary file; returns its
    /// result and libnifti's lines. Lines that are not libnifti's (another thread's)
    /// go back to stderr.
    static func quietly<T>(_ body: () -> T) -> (T, String) {
        lock.withLock { configured in
            if !configured {
                nifti_set_debug_level(0)
                configured = true
            }
            fflush(nil)
            let saved = dup(STDERR_FILENO)
            guard saved >= 0, let capture = tmpfile() else { return (body(), "") }
            defer { fclose(capture) }
            dup2(fileno(capture), STDERR_FILENO)
            let result = body()
            fflush(nil)
            dup2(saved, STDERR_FILENO)
            close(saved)
            rewind(capture)
            var text = ""
            var buffer = [CChar](repeating: 0, count: 4096)
            while fgets(&buffer, Int32(buffer.count), capture) != nil { text += String(cString: buffer) }
            var ours: [String] = []
            for line in text.split(separator: "\n") {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix("**") || trimmed.hasPrefix("++") || trimmed.hasPrefix("--") || trimmed.hasPrefix("nifti") {
                    ours.append(trimmed.drop { $0 == "*" || $0 == "+" || $0 == "-" || $0 == " " }.description)
                } else {
                    FileHandle.standardError.write(Data((line + "\n").utf8))
                }
            }
            return (result, ours.joined(separator: "; "))
        }
    }
}
