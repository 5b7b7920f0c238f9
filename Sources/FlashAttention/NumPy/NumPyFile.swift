#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Reading and writing numpy `.npy` files, so that numpy and PyTorch users can hand arrays to
/// `flash-attn` and read its results with `np.load`.
///
/// Reads format versions 1.0, 2.0 and 3.0 holding little-endian float32 (`<f4`) or float16
/// (`<f2`) in C order; anything else — big-endian, Fortran order, other dtypes, object or
/// structured arrays, truncated data, a malformed header — throws `AttentionError.file`
/// whose reason says what was found and what is accepted. Writes version 1.0 (2.0 when the
/// header is too long for 1.0) atomically: a temporary in the same folder, then `rename`.
///
/// Element bytes are copied as they are: the little-endian hosts Swift supports (x86-64,
/// arm64) store float32 and float16 exactly as `.npy` does.
public enum NumPyFile {
  /// Reads an array of any shape as float32 or float16.
  public static func read(path: String) throws(AttentionError) -> AnyTensor {
    let fd = try openForReading(path)
    defer { close(fd) }
    let (header, fileSize) = try readHeader(fd, path: path)

    let available = fileSize - header.dataOffset
    let shapeText = "(" + header.shape.map(String.init).joined(separator: ", ") + ")"
    if available < header.dataByteCount {
      throw .file(
        path: path,
        reason: "truncated: shape \(shapeText) \(header.dtype.numpyName) needs \(header.dataByteCount) bytes of data, the file holds \(available)")
    }
    if available > header.dataByteCount {
      throw .file(
        path: path,
        reason: "\(available - header.dataByteCount) unexpected bytes after the data of shape \(shapeText) \(header.dtype.numpyName)")
    }

    switch header.dtype {
    case .float32:
      let tensor = Tensor<Float>(shape: header.shape, repeating: 0)
      try readFully(fd, into: UnsafeMutableRawPointer(tensor.pointer), at: header.dataOffset, count: header.dataByteCount, path: path)
      return .float32(tensor)
    case .float16:
      let tensor = Tensor<Float16>(shape: header.shape, repeating: 0)
      try readFully(fd, into: UnsafeMutableRawPointer(tensor.pointer), at: header.dataOffset, count: header.dataByteCount, path: path)
      return .float16(tensor)
    case .bfloat16:
      // decodeDescr never yields bfloat16: numpy has no such dtype.
      throw .file(path: path, reason: "unsupported dtype bfloat16; accepted: \(NumPyHeader.accepted)")
    }
  }

  /// Reads a float32 array, e.g. an LSE. float16 is refused rather than widened: an LSE
  /// rounded to 11 bits would silently spoil the gradients computed from it.
  public static func readFloat32(path: String) throws(AttentionError) -> Tensor<Float> {
    switch try read(path: path) {
    case let .float32(tensor): return tensor
    case let other:
      throw .file(path: path, reason: "dtype \(other.dtype.numpyName); expected '<f4' (float32) here")
    }
  }

  /// Writes `tensor` (float32 or float16; bfloat16 throws) to `path`, atomically.
  public static func write(_ tensor: AnyTensor, to path: String) throws(AttentionError) {
    try stage(tensor, to: path).commit()
  }

  /// Writes `tensor` to a temporary next to `path`; `commit()` on the result moves it into
  /// place. Use this to write several outputs and commit them only when all succeeded.
  public static func stage(_ tensor: AnyTensor, to path: String) throws(AttentionError) -> StagedFile {
    let header = try NumPyHeader.encode(shape: tensor.shape, dtype: tensor.dtype)
    return try StagedFile(destination: path) { (fd: Int32) throws(AttentionError) in
      // Array's withUnsafeBytes rethrows untyped errors; carry ours out in a Result.
      try header.withUnsafeBytes { raw in
        Result { () throws(AttentionError) in try StagedFile.writeAll(fd, raw.baseAddress!, count: raw.count, path: path) }
      }.get()
      switch tensor {
      case let .float32(t): try StagedFile.writeAll(fd, t.pointer, count: t.byteCount, path: path)
      case let .float16(t): try StagedFile.writeAll(fd, t.pointer, count: t.byteCount, path: path)
      case .bfloat16: break  // refused by encode above
      }
    }
  }

  /// Reads the header only (shape, dtype, version), e.g. to check shapes before loading.
  public static func readHeader(path: String) throws(AttentionError) -> NumPyHeader {
    let fd = try openForReading(path)
    defer { close(fd) }
    return try readHeader(fd, path: path).header
  }

  // MARK: POSIX reads

  private static func openForReading(_ path: String) throws(AttentionError) -> Int32 {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
      throw .file(path: path, reason: "cannot open: \(StagedFile.errorText(errno))")
    }
    return fd
  }

  private static func readHeader(_ fd: Int32, path: String) throws(AttentionError) -> (header: NumPyHeader, fileSize: Int) {
    var info = stat()
    guard fstat(fd, &info) == 0 else {
      throw .file(path: path, reason: "cannot read: \(StagedFile.errorText(errno))")
    }
    guard (info.st_mode & S_IFMT) == S_IFREG else {
      let what = (info.st_mode & S_IFMT) == S_IFDIR ? "a directory" : "not a regular file"
      throw .file(path: path, reason: "\(what); expected a .npy file")
    }
    let fileSize = Int(info.st_size)
    let preamble = try readBytes(fd, at: 0, count: min(fileSize, NumPyHeader.preambleByteCount), path: path)
    let (major, headerStart, headerLength) = try NumPyHeader.decodePreamble(preamble, fileSize: fileSize, path: path)
    let headerBytes = try readBytes(fd, at: headerStart, count: headerLength, path: path)
    let header = try NumPyHeader.decodeDictionary(
      headerBytes, major: major, dataOffset: headerStart + headerLength, path: path)
    return (header, fileSize)
  }

  private static func readBytes(_ fd: Int32, at offset: Int, count: Int, path: String) throws(AttentionError) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    guard count > 0 else { return bytes }
    try bytes.withUnsafeMutableBytes { raw in
      Result { () throws(AttentionError) in try readFully(fd, into: raw.baseAddress!, at: offset, count: count, path: path) }
    }.get()
    return bytes
  }

  private static func readFully(
    _ fd: Int32, into buffer: UnsafeMutableRawPointer, at offset: Int, count: Int, path: String
  ) throws(AttentionError) {
    var done = 0
    while done < count {
      let n = pread(fd, buffer + done, min(count - done, 1 << 30), off_t(offset + done))
      if n < 0 {
        if errno == EINTR { continue }
        throw .file(path: path, reason: "cannot read: \(StagedFile.errorText(errno))")
      }
      // The size was checked against fstat; a short file now means it shrank under us.
      guard n > 0 else { throw .file(path: path, reason: "truncated: the file ended while reading") }
      done += n
    }
  }
}

extension DType {
  /// How `.npy` and numpy name this dtype, for messages.
  var numpyName: String {
    switch self {
    case .float32: "'<f4' (float32)"
    case .float16: "'<f2' (float16)"
    case .bfloat16: "bfloat16"
    }
  }
}
