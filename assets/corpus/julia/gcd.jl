# Euclid: replace (a, b) by (b, a mod b) until b is zero
function gcd(a::Integer, b::Integer)
    a, b = abs(a), abs(b)
    while b != 0
        a, b = b, a % b
    end
    return a
end
