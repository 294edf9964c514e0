# Square-and-multiply over the bits of the exponent, reducing mod m at every step
function mod_pow(base::Integer, exponent::Integer, m::Integer)
    exponent >= 0 || throw(ArgumentError("negative exponent"))
    result = 1 % m
    b = mod(base, m)
    e = exponent
    while e > 0
        if isodd(e)
            result = result * b % m
        end
        b = b * b % m
        e >>= 1
    end
    return result
end
