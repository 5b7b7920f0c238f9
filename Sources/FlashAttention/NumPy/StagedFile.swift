#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// A file written completely to a temporary path in its destination's folder, and only then
/// moved into place by `commit()` — a `rename`, which replaces the destination atomically.
///
/// A reader never sees a half-written file, and an error (or a crash before `commit`) leaves
/// the destination untouched. `discard()`, or the deinitialiser of an uncommitted file,
/// removes the temporary. We do not `fsync`: the guarantee is about errors and concurrent
/// readers, not about power loss.
public final class StagedFile {
  /// Where `commit()` puts the file.
  public let destination: String
  /// The temporary, in the same folder so that `rename` does not cross file systems.
  public let temporaryPath: String
  private var pending = true

  /// Creates the temporary and calls `write` with its descriptor; on any error the temporary
  /// is removed and the error rethrown.
  public init(
    destination: String, write: (_ descriptor: Int32) throws(AttentionError) -> Void
  ) throws(AttentionError) {
    self.destination = destination
    var created: (path: String, descriptor: Int32)?
    for _ in 0..<16 where created == nil {
      let candidate = Self.temporaryName(for: destination)
      // O_EXCL: never clobber another process's temporary. The mode is masked by the umask
      // like any new file's.
      let fd = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
      if fd >= 0 {
        created = (candidate, fd)
      } else if errno != EEXIST {
        throw .file(path: destination, reason: "cannot create a file in its folder: \(Self.errorText(errno))")
      }
    }
    guard let created else {
      throw .file(path: destination, reason: "cannot create a temporary file next to it")
    }
    temporaryPath = created.path
    do {
      try write(created.descriptor)
    } catch {
      close(created.descriptor)
      unlink(temporaryPath)
      pending = false
      throw error
    }
    if close(created.descriptor) != 0 {
      let reason = Self.errorText(errno)
      unlink(temporaryPath)
      pending = false
      throw .file(path: destination, reason: "cannot write: \(reason)")
    }
  }

  deinit {
    if pending { unlink(temporaryPath) }
  }

  /// Moves the temporary into place, replacing any file at `destination`.
  public func commit() throws(AttentionError) {
    guard pending else { return }
    pending = false
    if rename(temporaryPath, destination) != 0 {
      let reason = Self.errorText(errno)
      unlink(temporaryPath)
      throw .file(path: destination, reason: "cannot replace: \(reason)")
    }
  }

  /// Removes the temporary; the destination stays as it was.
  public func discard() {
    guard pending else { return }
    pending = false
    unlink(temporaryPath)
  }

  /// Writes all of `count` bytes at `bytes`, retrying short writes and interrupted calls.
  public static func writeAll(
    _ descriptor: Int32, _ bytes: UnsafeRawPointer, count: Int, path: String
  ) throws(AttentionError) {
    var done = 0
    while done < count {
      // Chunks of at most 1 GiB: Linux writes at most ~2 GiB per call anyway.
      let n = posixWrite(descriptor, bytes + done, min(count - done, 1 << 30))
      if n < 0 {
        if errno == EINTR { continue }
        throw .file(path: path, reason: "cannot write: \(errorText(errno))")
      }
      done += n
    }
  }

  static func temporaryName(for destination: String) -> String {
    let slash = destination.lastIndex(of: "/")
    let folder = slash.map { String(destination[...$0]) } ?? ""
    let name = slash.map { String(destination[destination.index(after: $0)...]) } ?? destination
    let tag = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    return "\(folder).\(name).\(getpid()).\(tag).tmp"
  }

  static func errorText(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "error \(code)" }
    return String(cString: text)
  }
}

/// Several staged files committed together, for a command with several outputs: either all
/// of them replace their destinations or — as far as the file system allows — none does.
/// Every output is staged (fully written) before the first is committed; if a commit fails,
/// the outputs already moved into place are removed again.
public final class StagedFileGroup {
  private var staged: [StagedFile] = []

  public init() {}

  public func add(_ file: StagedFile) { staged.append(file) }

  public func commit() throws(AttentionError) {
    for (index, file) in staged.enumerated() {
      do {
        try file.commit()
      } catch {
        for done in staged[..<index] { unlink(done.destination) }
        for rest in staged[(index + 1)...] { rest.discard() }
        throw error
      }
    }
  }

  public func discard() {
    for file in staged { file.discard() }
  }
}

// Inside `StagedFile` the name `write` is its initialiser's closure parameter; name the C call.
@inline(__always)
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
  write(fd, buffer, count)
}
