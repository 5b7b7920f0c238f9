// The CPU backend lives here; see issue 2.
import FlashAttention
