import Testing
@testable import FlashAttentionCUDA

@Suite struct PtxasReportTests {
  // A log as NVRTC 13.0 writes it with --ptxas-options=-v (two kernels, one spilling).
  static let log = """
    ptxas info    : 0 bytes gmem
    ptxas info    : Compiling entry function 'flash_fwd' for 'sm_90a'
    ptxas info    : Function properties for flash_fwd
    ptxas         .     24 bytes stack frame, 16 bytes spill stores, 20 bytes spill loads
    ptxas info    : Used 255 registers, used 1 barriers, 1024 bytes smem
    ptxas info    : Compile time = 28.615 ms
    ptxas info    : Compiling entry function 'softmax_rows' for 'sm_80'
    ptxas info    : Function properties for softmax_rows
    ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
    ptxas info    : Used 8 registers, used 0 barriers, 368 bytes cmem[0]
    """

  @Test func parsesEveryEntryFunction() {
    let reports = PtxasReport.parse(log: Self.log)
    #expect(reports.count == 2)
    #expect(
      reports[0]
        == PtxasReport(
          function: "flash_fwd", arch: "sm_90a", registers: 255, sharedMemoryBytes: 1024, stackFrameBytes: 24,
          spillStoreBytes: 16, spillLoadBytes: 20, barriers: 1))
    #expect(reports[0].spills)
    #expect(
      reports[1]
        == PtxasReport(function: "softmax_rows", arch: "sm_80", registers: 8, sharedMemoryBytes: 0, barriers: 0))
    #expect(!reports[1].spills)
  }

  @Test func serialisedWgmmaIsFlaggedOnTheFunctionItNames() {
    let log = """
      ptxas info    : (C7520) Potential Performance Loss: wgmma.mma_async instructions are serialized due to program dependence on compiler-inserted WG.AR in divergent path in the function 'hopper_b'
      ptxas info    : 0 bytes gmem
      ptxas info    : Compiling entry function 'hopper_a' for 'sm_90a'
      ptxas info    : Function properties for hopper_a
      ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
      ptxas info    : Used 168 registers, used 16 barriers
      ptxas info    : Compiling entry function 'hopper_b' for 'sm_90a'
      ptxas info    : Function properties for hopper_b
      ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
      ptxas info    : Used 168 registers, used 16 barriers
      """
    let reports = PtxasReport.parse(log: log)
    #expect(reports.map(\.function) == ["hopper_a", "hopper_b"])
    #expect(reports.map(\.wgmmaSerialized) == [false, true])
    #expect(!reports[1].spills)
  }

  @Test func emptyOrForeignLogGivesNoReports() {
    #expect(PtxasReport.parse(log: "").isEmpty)
    #expect(PtxasReport.parse(log: "warning: something unrelated\nUsed 3 registers").isEmpty)
  }
}
