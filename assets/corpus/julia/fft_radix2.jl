# Recursive Cooley-Tukey: split into odd and even samples; length(x) must be a power of two
function fft(x::AbstractVector{<:Number})
    n = length(x)
    ispow2(n) || throw(ArgumentError("length must be a power of two"))
    if n == 1
        return ComplexF64[x[1]]
    end
    # x[1:2:n] holds the even-numbered samples in 0-based terms
    even = fft(x[1:2:n])
    odd = fft(x[2:2:n])
    half = div(n, 2)
    y = Vector{ComplexF64}(undef, n)
    for k in 1:half
        t = exp(-2im * pi * (k - 1) / n) * odd[k]
        y[k] = even[k] + t
        y[k + half] = even[k] - t
    end
    return y
end
