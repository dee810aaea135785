// User-supplied text quoted in a message must keep the message one line and the terminal sane.

/// `text` as quoted in an error: cut to 40 characters, and characters that would break the line
/// or drive the terminal (C0 and C1 controls, U+2028/U+2029, bidi and other format characters)
/// shown as `?`.
public func displayable(_ text: String) -> String {
    let scalars = Array(text.unicodeScalars)
    let visible = scalars.prefix(40).map { isUnprintable($0) ? "?" : String($0) }.joined()
    return scalars.count > 40 ? visible + "..." : visible
}

func isUnprintable(_ s: Unicode.Scalar) -> Bool {
    switch s.properties.generalCategory {
    case .control, .format, .lineSeparator, .paragraphSeparator: return true
    default: return false
    }
}
