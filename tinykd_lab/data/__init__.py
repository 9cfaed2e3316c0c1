"""The lab's data: scenes composed from real Fashion-MNIST crops, VADER's rated sentences."""
